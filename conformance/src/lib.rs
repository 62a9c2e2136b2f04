//! rtse-conformance: the Turn tracker, the sans-IO protocol machine, the
//! reference MTA and its named flaws, a loopback pump, the `rtse`
//! command-line tool and, in time, the simulator and the conformance suite.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod decode;
pub mod flaw;
pub mod fuzz;
mod fx;
pub mod input;
pub mod loopback;
pub mod machine;
pub mod mta;
pub mod observe;
pub mod proxy;
pub mod render;
pub mod sim;
pub mod suite;
pub mod synth;
pub mod timeline;
pub mod tracker;
pub mod tshark;
