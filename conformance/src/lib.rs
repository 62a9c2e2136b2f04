//! rtse-conformance: the Turn tracker, the `rtse` command-line tool and,
//! in time, the protocol machine, the reference MTA and its flaws, the
//! simulator and the conformance suite.
#![forbid(unsafe_code)]

pub mod cli;
pub mod decode;
pub mod fuzz;
pub mod input;
pub mod observe;
pub mod render;
pub mod tracker;
pub mod tshark;
