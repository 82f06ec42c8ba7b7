//! The real-cluster suite.
