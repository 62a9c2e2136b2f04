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

/// Largest captured packet (caplen) a capture reader accepts: libpcap's and
/// Wireshark's maximum snapshot length (`WTAP_MAX_PACKET_SIZE_STANDARD`).
pub const MAX_CAPTURE_PACKET_LEN: usize = 262_144;

/// Largest pcapng block (any type) a capture reader accepts. A block length
/// field above this is reported as an error instead of being buffered.
pub const MAX_CAPTURE_BLOCK_LEN: usize = 16 << 20;

/// Most interfaces (IDBs) in one pcapng section.
pub const MAX_CAPTURE_INTERFACES: usize = 4096;

/// Read size of the streaming capture reader (its buffer grows past this
/// only for a record that is larger, up to [`MAX_CAPTURE_BLOCK_LEN`]).
pub const CAPTURE_READ_CHUNK: usize = 256 << 10;

/// Out-of-order TCP payload octets buffered per direction of a connection.
/// Past this the reassembler stops waiting for the missing octets: it
/// reports a gap and delivers what it holds.
pub const MAX_TCP_OOO_BYTES_PER_DIR: usize = 1 << 20;

/// Out-of-order TCP segments buffered per direction of a connection.
pub const MAX_TCP_OOO_SEGMENTS_PER_DIR: usize = 1024;

/// Out-of-order TCP payload octets buffered over all connections.
pub const MAX_TCP_OOO_BYTES_TOTAL: usize = 16 << 20;

/// Octets of already delivered payload kept per direction to check that a
/// retransmission carries the same bytes (conflicting overlaps). Older
/// retransmitted octets are dropped unchecked. (Allocated at the first
/// payload of a direction, released when the connection closes.)
pub const TCP_OVERLAP_CHECK_WINDOW: usize = 2048;

/// Connections tracked at once (not yet closed). Past this the least
/// recently active sixteenth is closed (`CloseHow::Evicted`). With
/// [`TCP_OVERLAP_CHECK_WINDOW`] this bounds the per-connection state to
/// about 40 MB.
pub const MAX_TCP_OPEN_CONNECTIONS: usize = 8192;

/// Closed connections remembered, so that late packets of a closed
/// connection (a retransmitted FIN, the last ACK) keep its connection id
/// instead of opening a new one.
pub const MAX_TCP_CLOSED_CONNECTIONS: usize = 16_384;
