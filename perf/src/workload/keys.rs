//! Key choice: uniform, zipfian (scrambled) and latest, over a key space that may grow.

// Implementation-defined: used by generator.rs.
