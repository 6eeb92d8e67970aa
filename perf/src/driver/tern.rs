//! The tern driver.

// Contract: `TernDriver::connect(endpoints: TernEndpoints) -> Result<TernDriver, String>`,
// and `impl Driver for TernDriver`.
