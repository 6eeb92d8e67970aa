//! The segmented, group-committed write-ahead log (being built: issue 3).
