//! rtse-codec: the wire formats between TCP and X.400 P1, as parse/emit pairs
//! on borrowed bytes. No I/O.
//!
//! Layers, bottom-up, one module each:
//! [`tpkt`] (RFC 1006), [`cotp`] (X.224 class 0), [`session`] (X.225),
//! [`presentation`] (X.226), [`acse`] (X.227), [`rtse`] (X.228 normal mode),
//! [`x410`] (X.410-1984 RTS), [`p1`] (X.411, only what labels a transfer).
//! [`stack`] decodes all of them at once; [`capture`] reads pcap/pcapng.
//!
//! Conventions every module follows:
//! * `parse(&'a [u8]) -> Result<(Pdu<'a>, &'a [u8])>` (or `parse_exact` where
//!   nothing may follow); the PDU borrows from the input.
//! * `emit(&Pdu, &mut Vec<u8>)` appends one canonical encoding (definite
//!   lengths; SET members in definition order; fields recorded as present
//!   are written even when they hold the DEFAULT value, so that what was
//!   read is what is written).
//! * Errors are [`Error`]s: layer, offset relative to the slice given to that
//!   `parse` (callers [`Error::shift`] them to absolute offsets), expectation
//!   and finding. No parser panics, loops or allocates without bound: see
//!   [`limits`].
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod ber;
pub mod error;
pub mod hex;
pub mod inline;
pub mod limits;

pub mod acse;
pub mod capture;
pub mod cotp;
pub mod p1;
pub mod presentation;
pub mod rtse;
pub mod session;
pub mod stack;
pub mod tpkt;
pub mod x410;

pub use error::{Error, ErrorKind, Found, Layer, Result};
