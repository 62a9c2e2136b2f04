//! rtse-conformance
