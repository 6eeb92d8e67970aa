//! The etcd driver.

// Contract: `EtcdDriver::connect(endpoints: EtcdEndpoints) -> Result<EtcdDriver, String>`,
// and `impl Driver for EtcdDriver`.
