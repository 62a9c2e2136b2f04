//! rtse-conformance

pub mod tracker;
