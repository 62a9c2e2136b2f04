//! Named limits: no input makes a parser recurse, loop or allocate past these.

/// Deepest BER nesting any parser descends into (constructed strings,
/// indefinite lengths, nested SEQUENCE/SET). der-parser uses 50; our APDUs
/// nest at most about 15 deep in practice.
pub const MAX_DEPTH: usize = 32;

/// Largest TPKT (RFC 1006 length field is 16 bits).
pub const MAX_TPKT_LEN: usize = 65_535;

/// Largest TSDU (reassembled from DT TPDUs) or SPDU the codec accepts.
/// Session v2 allows SSDUs up to 65 539 octets per SPDU; segmented
/// RTTR transfers are reassembled above this limit by the capture layer.
pub const MAX_TSDU_LEN: usize = 1 << 20;

/// Largest reassembled RTSE transfer (concatenated RTTR segments).
pub const MAX_TRANSFER_LEN: usize = 16 << 20;

/// Most parameters (PI/PGI units) in one SPDU.
pub const MAX_SESSION_PARAMS: usize = 64;

/// Most SPDUs concatenated in one TSDU (basic concatenation has 2;
/// extended concatenation more).
pub const MAX_CONCATENATED_SPDUS: usize = 8;

/// Most members of one BER SET / SEQUENCE OF that a typed mapping keeps
/// (presentation contexts, EXTERNALs, PDVs, ...).
pub const MAX_LIST_ITEMS: usize = 64;

/// Largest BER INTEGER (in content octets) decoded to a number.
pub const MAX_INT_LEN: usize = 8;
