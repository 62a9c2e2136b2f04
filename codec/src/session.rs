//! X.225 / ISO 8327-1 session SPDUs, as RTSE uses them (and every other SPDU
//! well enough to decode, keep and re-emit it).
//!
//! # Encoding
//!
//! `SI LI parameters [user information]`: SI is the SPDU identifier, LI the
//! length of the parameter field (one octet 0..=254, or `FF hh ll`), the
//! parameter field a sequence of `code length value` units (PGI units hold
//! PI units). Only DT, TD and EX have a user-information field; it follows
//! the parameter field, is not counted in LI and runs to the end of the TSDU.
//! Every other SPDU carries user data in PGI 193 (`C1`) or 194 (`C2`).
//!
//! # Shared SI codes
//!
//! Several SPDUs share an SI; [`parse_tsdu`] tells them apart as X.225 and
//! ISODE (`tsdu2spkt`) do:
//!
//! * SI 1: the first SPDU of a TSDU is GT, a later one DT.
//! * SI 25 / 26: first in the TSDU (category 1, alone) AB / AA; after a
//!   category-0 SPDU AI / AIA.
//! * SI 41: MAP when the Sync Type Item (PI 15) has bit 0x01 ("activity not
//!   ended") set, else AE. When the caller's [`Context`] says the activity
//!   management functional unit is *not* in use, every SI 41 is MAP.
//! * SI 42: the bytes of MAA and AEA are identical. **Decision:** it is AEA
//!   unless the [`Context`] says otherwise (`last_major == Some(Map)`, or
//!   requirements without activity management). Rationale: RTSE sessions
//!   select activity management and not the major-synchronize functional
//!   unit (0x0249), so in an RTSE session SI 42 can only be AEA. Wireshark
//!   always says "MAA"; example 3 and the p772 capture are AEAs.
//!
//! # Strictness
//!
//! By default parsing is strict: an LI longer than the input, a parameter
//! running past its field, a fixed-size parameter of the wrong size, a
//! repeated parameter, a malformed Serial Number, a missing mandatory
//! parameter (Serial Number in MIP/MIA/MAP/MAA/AE/AEA/RS/RA, Activity
//! Identifier in AS/AR, Linking Information in AR, Prepare Type in PR) and a
//! TSDU that breaks the concatenation rules are errors naming the offset.
//! Parameters this codec has no typed field for (unknown codes, or known
//! codes in an SPDU that does not define them, such as PI 49 in AC) are
//! kept, code and raw value, in [`Params`].
//!
//! [`Context::lenient`] repairs what real implementations get wrong and
//! records what it did in [`Tsdu::repairs`]:
//! * LI longer than the TSDU: the parameter field is cut at the end of the
//!   TSDU ([`Repairs::LI_CLAMPED`]);
//! * User Data (PGI 193) of length 0 followed by more octets in the
//!   parameter field: the rest of the parameter field is the user data
//!   ([`Repairs::USER_DATA_TAKES_REST`]). This is the AC SPDU of the `iec`
//!   and `iec61850_*.pcap` captures (`c1 00` followed by the CPA-PPDU, LI one
//!   octet too long); tshark reports it as malformed, so does strict mode;
//! * concatenation rules not respected ([`Repairs::CONCATENATION`]).
//!
//! # Canonical emission
//!
//! [`emit`] writes parameters in the order of the worked examples and of
//! ISODE (`spkt2tsdu`): PGIs and PIs in ascending code order, except that
//! the Enclosure Item comes right before the user data, then the unknown
//! parameters in the order received, then User Data (193), then Extended
//! User Data (194); in RF the Reason Code (which carries the user data) is
//! last. Lengths use the one-octet form below 255. Because of that order,
//! re-emitting a parsed SPDU reproduces its bytes whenever the sender used
//! the canonical order and short lengths (all the worked examples and the
//! real captures do). Values longer than 65 535 octets cannot be encoded:
//! `emit` cuts such a value (and saturates a PGI length) rather than panic.
//!
//! # Allocation
//!
//! Parsing a token or data TSDU never allocates: typed fields borrow from
//! the input, unknown parameters are a view of the parameter field
//! ([`Params`]) iterated lazily, and a [`Tsdu`] holds its first two SPDUs
//! inline (all of basic concatenation). Only the rare large SPDUs (CN, AC,
//! RF, AR) are boxed, and the third and later SPDUs of an
//! extended-concatenation TSDU go to a `Vec`.
//!
//! # Doubts, decided here
//!
//! * TD (typed data) category: ISODE sends TD alone (no GT prefix), so it is
//!   category 1 here; strict mode also accepts it after a category-0 SPDU.
//! * Extended concatenation ([`Context::extended_concatenation`]) is modelled
//!   as: an optional category-0 SPDU followed by any number of category-2
//!   SPDUs (up to [`MAX_CONCATENATED_SPDUS`]).
//! * ISODE puts MIA user data in PI 46; it is kept as an unknown parameter
//!   (RTSE sends no MIA user data).
//! * Absent Token Setting Item = all tokens on the initiator's side
//!   ([`Connect::effective_token_setting`]); absent Version Number = v1.

use crate::error::{Error, Found, Layer, Result};
use crate::limits::{MAX_CONCATENATED_SPDUS, MAX_SESSION_PARAMS, MAX_TSDU_LEN};
use core::fmt;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use serde::Serialize;

const L: Layer = Layer::Session;

/// Longest parameter value (and parameter field) the length escape can state.
pub const MAX_PARAM_LEN: usize = 0xFFFF;

/// SPDU identifiers (SI).
pub mod si {
    /// ER Exception Report.
    pub const ER: u8 = 0;
    /// GT Give Tokens (first in a TSDU) and DT Data Transfer (after it).
    pub const GT_DT: u8 = 1;
    /// PT Please Tokens.
    pub const PT: u8 = 2;
    /// EX Expedited.
    pub const EX: u8 = 5;
    /// PR Prepare.
    pub const PR: u8 = 7;
    /// NF Not Finished.
    pub const NF: u8 = 8;
    /// FN Finish.
    pub const FN: u8 = 9;
    /// DN Disconnect.
    pub const DN: u8 = 10;
    /// RF Refuse.
    pub const RF: u8 = 12;
    /// CN Connect.
    pub const CN: u8 = 13;
    /// AC Accept.
    pub const AC: u8 = 14;
    /// CDO Connect Data Overflow.
    pub const CDO: u8 = 15;
    /// OA Overflow Accept.
    pub const OA: u8 = 16;
    /// GTC Give Tokens Confirm.
    pub const GTC: u8 = 21;
    /// GTA Give Tokens Ack.
    pub const GTA: u8 = 22;
    /// AB Abort (alone) and AI Activity Interrupt (after GT).
    pub const AB_AI: u8 = 25;
    /// AA Abort Accept (alone) and AIA Activity Interrupt Ack (after GT).
    pub const AA_AIA: u8 = 26;
    /// AR Activity Resume.
    pub const AR: u8 = 29;
    /// TD Typed Data.
    pub const TD: u8 = 33;
    /// RA Resynchronize Ack.
    pub const RA: u8 = 34;
    /// MAP Major Sync Point and AE Activity End.
    pub const MAP_AE: u8 = 41;
    /// MAA Major Sync Ack and AEA Activity End Ack.
    pub const MAA_AEA: u8 = 42;
    /// AS Activity Start.
    pub const AS: u8 = 45;
    /// ED Exception Data.
    pub const ED: u8 = 48;
    /// MIP Minor Sync Point.
    pub const MIP: u8 = 49;
    /// MIA Minor Sync Ack.
    pub const MIA: u8 = 50;
    /// RS Resynchronize.
    pub const RS: u8 = 53;
    /// AD Activity Discard.
    pub const AD: u8 = 57;
    /// ADA Activity Discard Ack.
    pub const ADA: u8 = 58;
    /// CD Capability Data.
    pub const CD: u8 = 61;
    /// CDA Capability Data Ack.
    pub const CDA: u8 = 62;
}

/// Parameter codes (PGI and PI).
pub mod pi {
    /// PGI Connection Identifier.
    pub const CONNECTION_ID: u8 = 1;
    /// PGI Connect/Accept Item.
    pub const CONNECT_ACCEPT_ITEM: u8 = 5;
    /// Called SS-user Reference.
    pub const CALLED_REF: u8 = 9;
    /// Calling SS-user Reference.
    pub const CALLING_REF: u8 = 10;
    /// Common Reference.
    pub const COMMON_REF: u8 = 11;
    /// Additional Reference Information.
    pub const ADDITIONAL_REF: u8 = 12;
    /// Sync Type Item.
    pub const SYNC_TYPE: u8 = 15;
    /// Token Item.
    pub const TOKEN_ITEM: u8 = 16;
    /// Transport Disconnect.
    pub const TRANSPORT_DISCONNECT: u8 = 17;
    /// Protocol Options.
    pub const PROTOCOL_OPTIONS: u8 = 19;
    /// Session User Requirements.
    pub const REQUIREMENTS: u8 = 20;
    /// TSDU Maximum Size.
    pub const TSDU_MAX_SIZE: u8 = 21;
    /// Version Number.
    pub const VERSION: u8 = 22;
    /// Initial Serial Number.
    pub const INITIAL_SERIAL: u8 = 23;
    /// Prepare Type.
    pub const PREPARE_TYPE: u8 = 24;
    /// Enclosure Item.
    pub const ENCLOSURE: u8 = 25;
    /// Token Setting Item.
    pub const TOKEN_SETTING: u8 = 26;
    /// Resync Type.
    pub const RESYNC_TYPE: u8 = 27;
    /// PGI Linking Information.
    pub const LINKING: u8 = 33;
    /// Activity Identifier.
    pub const ACTIVITY_ID: u8 = 41;
    /// Serial Number.
    pub const SERIAL: u8 = 42;
    /// MIA User Data (ISODE).
    pub const MIA_USER_DATA: u8 = 46;
    /// Reflect Parameter Values.
    pub const REFLECT: u8 = 49;
    /// Reason Code.
    pub const REASON: u8 = 50;
    /// Calling Session Selector.
    pub const CALLING_SSEL: u8 = 51;
    /// Called / Responding Session Selector.
    pub const CALLED_SSEL: u8 = 52;
    /// Second Resync Type.
    pub const SECOND_RESYNC_TYPE: u8 = 53;
    /// Second Serial Number.
    pub const SECOND_SERIAL: u8 = 54;
    /// Second Initial Serial Number.
    pub const SECOND_INITIAL_SERIAL: u8 = 55;
    /// Upper Limit Serial Number.
    pub const UPPER_LIMIT_SERIAL: u8 = 56;
    /// Large Initial Serial Number.
    pub const LARGE_INITIAL_SERIAL: u8 = 57;
    /// Large Second Initial Serial Number.
    pub const LARGE_SECOND_INITIAL_SERIAL: u8 = 58;
    /// Data Overflow.
    pub const DATA_OVERFLOW: u8 = 60;
    /// PGI User Data.
    pub const USER_DATA: u8 = 193;
    /// PGI Extended User Data.
    pub const EXTENDED_USER_DATA: u8 = 194;
}

/// Version Number (PI 22) bits.
pub const VERSION_1: u8 = 0x01;
/// Version Number (PI 22) bits.
pub const VERSION_2: u8 = 0x02;

/// Transport Disconnect (PI 17): release the transport connection (else keep it).
pub const TD_RELEASE: u8 = 0x01;
/// Transport Disconnect: user abort.
pub const TD_USER_ABORT: u8 = 0x02;
/// Transport Disconnect: protocol error.
pub const TD_PROTOCOL_ERROR: u8 = 0x04;
/// Transport Disconnect: no reason.
pub const TD_NO_REASON: u8 = 0x08;
/// Transport Disconnect: implementation restriction.
pub const TD_IMPLEMENTATION_RESTRICTION: u8 = 0x10;

/// Enclosure Item (PI 25): beginning of SSDU.
pub const ENCLOSURE_BEGIN: u8 = 0x01;
/// Enclosure Item: end of SSDU.
pub const ENCLOSURE_END: u8 = 0x02;

/// Sync Type Item (PI 15) in MIP: explicit confirmation not required.
pub const SYNC_NO_CONFIRM: u8 = 0x01;
/// Sync Type Item in MAP: activity not ended.
pub const SYNC_ACTIVITY_NOT_ENDED: u8 = 0x01;

/// RF Reason Code: rejection by the called SS-user (user data follows).
pub const RF_REJECTED_BY_USER: u8 = 2;
/// RF Reason Code: session selector unknown.
pub const RF_SSEL_UNKNOWN: u8 = 129;
/// RF Reason Code: versions not supported.
pub const RF_VERSION_NOT_SUPPORTED: u8 = 132;

/// ED / AI / AD Reason Code: local SS-user error (ISODE `SP_LOCAL`).
pub const REASON_LOCAL_ERROR: u8 = 7;
/// ED / AI / AD Reason Code: unrecoverable procedural error.
pub const REASON_PROCEDURAL_ERROR: u8 = 8;

// ---------------------------------------------------------------------------
// Kinds and categories

/// Concatenation category of an SPDU (X.225 basic concatenation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// GT, PT: may be followed by one category-2 SPDU.
    Zero,
    /// Sent alone in a TSDU.
    One,
    /// Only after a category-0 SPDU.
    Two,
    /// EX, PR: on the expedited flow (alone).
    Expedited,
}

macro_rules! kinds {
    ($($v:ident $name:literal $si:expr, $cat:ident;)*) => {
        /// Every SPDU type, including the pairs that share an SI.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SpduKind { $(#[doc = $name] $v,)* }

        impl SpduKind {
            /// Every kind.
            pub const ALL: &'static [SpduKind] = &[$(SpduKind::$v,)*];
            /// Standard abbreviation (`"CN"`, `"GTC"`...).
            pub const fn name(self) -> &'static str {
                match self { $(SpduKind::$v => $name,)* }
            }
            /// SPDU identifier on the wire.
            pub const fn si(self) -> u8 {
                match self { $(SpduKind::$v => $si,)* }
            }
            /// Concatenation category.
            pub const fn category(self) -> Category {
                match self { $(SpduKind::$v => Category::$cat,)* }
            }
        }
    };
}

kinds! {
    Cn "CN" si::CN, One;
    Ac "AC" si::AC, One;
    Rf "RF" si::RF, One;
    Fn "FN" si::FN, One;
    Dn "DN" si::DN, One;
    Nf "NF" si::NF, One;
    Ab "AB" si::AB_AI, One;
    Aa "AA" si::AA_AIA, One;
    Dt "DT" si::GT_DT, Two;
    Gt "GT" si::GT_DT, Zero;
    Pt "PT" si::PT, Zero;
    Gtc "GTC" si::GTC, One;
    Gta "GTA" si::GTA, One;
    Mip "MIP" si::MIP, Two;
    Mia "MIA" si::MIA, Two;
    Map "MAP" si::MAP_AE, Two;
    Maa "MAA" si::MAA_AEA, Two;
    Rs "RS" si::RS, Two;
    Ra "RA" si::RA, Two;
    As "AS" si::AS, Two;
    Ar "AR" si::AR, Two;
    Ai "AI" si::AB_AI, Two;
    Aia "AIA" si::AA_AIA, Two;
    Ad "AD" si::AD, Two;
    Ada "ADA" si::ADA, Two;
    Ae "AE" si::MAP_AE, Two;
    Aea "AEA" si::MAA_AEA, Two;
    Cd "CD" si::CD, Two;
    Cda "CDA" si::CDA, Two;
    Ed "ED" si::ED, Two;
    Er "ER" si::ER, Two;
    Td "TD" si::TD, One;
    Cdo "CDO" si::CDO, One;
    Oa "OA" si::OA, One;
    Pr "PR" si::PR, Expedited;
    Ex "EX" si::EX, Expedited;
}

impl Serialize for SpduKind {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for SpduKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Parameter value types

/// Token Item (PI 16) bits: which tokens a GT gives or a PT asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tokens(pub u8);

/// The four session tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Token {
    /// Data token.
    Data,
    /// Synchronize-minor token.
    MinorSync,
    /// Major/activity token.
    MajorActivity,
    /// Release token.
    Release,
}

impl Token {
    /// All four, in bit order.
    pub const ALL: [Token; 4] = [Token::Data, Token::MinorSync, Token::MajorActivity, Token::Release];
    /// The Token Item bit of this token.
    pub const fn bit(self) -> Tokens {
        match self {
            Token::Data => Tokens::DATA,
            Token::MinorSync => Tokens::MINOR,
            Token::MajorActivity => Tokens::MAJOR,
            Token::Release => Tokens::RELEASE,
        }
    }
    const fn setting_shift(self) -> u8 {
        match self {
            Token::Data => 0,
            Token::MinorSync => 2,
            Token::MajorActivity => 4,
            Token::Release => 6,
        }
    }
}

impl Tokens {
    /// No tokens.
    pub const NONE: Tokens = Tokens(0);
    /// Data token (0x01).
    pub const DATA: Tokens = Tokens(0x01);
    /// Synchronize-minor token (0x04).
    pub const MINOR: Tokens = Tokens(0x04);
    /// Major/activity token (0x10).
    pub const MAJOR: Tokens = Tokens(0x10);
    /// Release token (0x40).
    pub const RELEASE: Tokens = Tokens(0x40);
    /// The RTSE Turn: data + minor-sync + major/activity (0x15).
    pub const TURN: Tokens = Tokens(0x15);

    /// Whether every token of `other` is in `self`.
    pub const fn contains(self, other: Tokens) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether `token` is in `self`.
    pub const fn has(self, token: Token) -> bool {
        self.contains(token.bit())
    }
    /// Union.
    #[must_use]
    pub const fn with(self, other: Tokens) -> Tokens {
        Tokens(self.0 | other.0)
    }
    /// No bit set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

const TOKEN_BIT_NAMES: [&str; 8] = ["data", "bit2", "minor-sync", "bit4", "major-activity", "bit6", "release", "bit8"];

impl Serialize for Tokens {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        serialize_bits(s, u16::from(self.0), &TOKEN_BIT_NAMES)
    }
}

fn serialize_bits<S: Serializer>(s: S, v: u16, names: &[&'static str]) -> core::result::Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(None)?;
    for (i, name) in names.iter().enumerate() {
        if v & (1u16 << i) != 0 {
            seq.serialize_element(name)?;
        }
    }
    seq.end()
}

/// Who holds a token initially (Token Setting Item, 2 bits per token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenPosition {
    /// `00`: the initiator's side.
    Initiator,
    /// `01`: the responder's side.
    Responder,
    /// `10`: the called SS-user's choice (CN only).
    CalledChoice,
    /// `11`: reserved.
    Reserved,
}

impl TokenPosition {
    const fn bits(self) -> u8 {
        match self {
            TokenPosition::Initiator => 0,
            TokenPosition::Responder => 1,
            TokenPosition::CalledChoice => 2,
            TokenPosition::Reserved => 3,
        }
    }
}

/// Token Setting Item (PI 26): initial position of each token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TokenSetting(pub u8);

impl TokenSetting {
    /// `00`: every token on the initiator's side (the initiator has the Turn).
    pub const ALL_INITIATOR: TokenSetting = TokenSetting(0x00);
    /// `15`: data, minor-sync and major/activity tokens with the responder.
    pub const TURN_RESPONDER: TokenSetting = TokenSetting(0x15);
    /// `2A`: data, minor-sync and major/activity tokens left to the called side.
    pub const TURN_CALLED_CHOICE: TokenSetting = TokenSetting(0x2A);

    /// A setting from the position of each token.
    pub const fn new(data: TokenPosition, minor: TokenPosition, major: TokenPosition, release: TokenPosition) -> Self {
        TokenSetting(data.bits() | minor.bits() << 2 | major.bits() << 4 | release.bits() << 6)
    }
    /// Where `token` starts.
    pub const fn position(self, token: Token) -> TokenPosition {
        match (self.0 >> token.setting_shift()) & 3 {
            0 => TokenPosition::Initiator,
            1 => TokenPosition::Responder,
            2 => TokenPosition::CalledChoice,
            _ => TokenPosition::Reserved,
        }
    }
    /// The same setting with `token` at `position`.
    #[must_use]
    pub const fn with(self, token: Token, position: TokenPosition) -> Self {
        let shift = token.setting_shift();
        TokenSetting((self.0 & !(3 << shift)) | position.bits() << shift)
    }
    /// The tokens that start on the side at `position`.
    pub fn tokens_at(self, position: TokenPosition) -> Tokens {
        Token::ALL.iter().filter(|t| self.position(**t) == position).fold(Tokens::NONE, |acc, t| acc.with(t.bit()))
    }
}

impl Serialize for TokenSetting {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("data", &self.position(Token::Data))?;
        m.serialize_entry("minor-sync", &self.position(Token::MinorSync))?;
        m.serialize_entry("major-activity", &self.position(Token::MajorActivity))?;
        m.serialize_entry("release", &self.position(Token::Release))?;
        m.end()
    }
}

/// Session User Requirements (PI 20): the functional units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Requirements(pub u16);

impl Requirements {
    /// Half-duplex.
    pub const HALF_DUPLEX: Requirements = Requirements(0x0001);
    /// Duplex.
    pub const DUPLEX: Requirements = Requirements(0x0002);
    /// Expedited data.
    pub const EXPEDITED: Requirements = Requirements(0x0004);
    /// Minor synchronize.
    pub const MINOR_SYNC: Requirements = Requirements(0x0008);
    /// Major synchronize.
    pub const MAJOR_SYNC: Requirements = Requirements(0x0010);
    /// Resynchronize.
    pub const RESYNC: Requirements = Requirements(0x0020);
    /// Activity management.
    pub const ACTIVITY_MANAGEMENT: Requirements = Requirements(0x0040);
    /// Negotiated release.
    pub const NEGOTIATED_RELEASE: Requirements = Requirements(0x0080);
    /// Capability data.
    pub const CAPABILITY_DATA: Requirements = Requirements(0x0100);
    /// Exceptions.
    pub const EXCEPTIONS: Requirements = Requirements(0x0200);
    /// Typed data.
    pub const TYPED_DATA: Requirements = Requirements(0x0400);
    /// Symmetric synchronize.
    pub const SYMMETRIC_SYNC: Requirements = Requirements(0x0800);
    /// Data separation.
    pub const DATA_SEPARATION: Requirements = Requirements(0x1000);
    /// What RTSE requires (ISODE `RTS_MYREQUIRE`): half-duplex, minor
    /// synchronize, activity management, exceptions = 0x0249.
    pub const RTSE: Requirements = RTSE_REQUIREMENTS;

    /// Whether every unit of `other` is selected.
    pub const fn contains(self, other: Requirements) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    #[must_use]
    pub const fn with(self, other: Requirements) -> Requirements {
        Requirements(self.0 | other.0)
    }
    /// The tokens available with these functional units (X.225: data token
    /// with half-duplex, minor-sync token with minor synchronize or
    /// symmetric sync, major/activity token with major synchronize or
    /// activity management, release token with negotiated release).
    pub const fn available_tokens(self) -> Tokens {
        let mut t = 0;
        if self.0 & Self::HALF_DUPLEX.0 != 0 {
            t |= Tokens::DATA.0;
        }
        if self.0 & (Self::MINOR_SYNC.0 | Self::SYMMETRIC_SYNC.0) != 0 {
            t |= Tokens::MINOR.0;
        }
        if self.0 & (Self::MAJOR_SYNC.0 | Self::ACTIVITY_MANAGEMENT.0) != 0 {
            t |= Tokens::MAJOR.0;
        }
        if self.0 & Self::NEGOTIATED_RELEASE.0 != 0 {
            t |= Tokens::RELEASE.0;
        }
        Tokens(t)
    }
}

/// Session User Requirements that RTSE uses in both modes: 0x0249.
pub const RTSE_REQUIREMENTS: Requirements = Requirements(0x0249);

const FU_NAMES: [&str; 16] = [
    "half-duplex",
    "duplex",
    "expedited",
    "minor-sync",
    "major-sync",
    "resynchronize",
    "activity-management",
    "negotiated-release",
    "capability-data",
    "exceptions",
    "typed-data",
    "symmetric-sync",
    "data-separation",
    "bit14",
    "bit15",
    "bit16",
];

impl Serialize for Requirements {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        serialize_bits(s, self.0, &FU_NAMES)
    }
}

/// A Serial Number (PI 42, 23): 1 to 6 ASCII decimal digits, kept as sent
/// (leading zeros included). Stored inline, no borrow.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SerialNumber {
    digits: [u8; 6],
    len: u8,
}

impl Default for SerialNumber {
    /// `"0"`.
    fn default() -> Self {
        SerialNumber { digits: [b'0', 0, 0, 0, 0, 0], len: 1 }
    }
}

impl SerialNumber {
    /// Largest value 6 digits hold.
    pub const MAX: u32 = 999_999;

    /// `n` in decimal without leading zeros; `None` above [`Self::MAX`].
    pub fn new(n: u32) -> Option<Self> {
        if n > Self::MAX {
            return None;
        }
        let mut tmp = [0u8; 6];
        let mut len = 0usize;
        let mut v = n;
        loop {
            if let Some(slot) = tmp.get_mut(len) {
                *slot = b'0' + (v % 10) as u8;
            }
            len += 1;
            v /= 10;
            if v == 0 || len == 6 {
                break;
            }
        }
        let mut digits = [0u8; 6];
        for (i, d) in tmp.iter().take(len).rev().enumerate() {
            if let Some(slot) = digits.get_mut(i) {
                *slot = *d;
            }
        }
        Some(SerialNumber { digits, len: len as u8 })
    }

    /// `n` modulo 1 000 000.
    pub fn wrapping(n: u32) -> Self {
        Self::new(n % 1_000_000).unwrap_or_default()
    }

    /// From the raw digits: `None` unless 1 to 6 ASCII decimal digits.
    pub fn from_digits(raw: &[u8]) -> Option<Self> {
        if raw.is_empty() || raw.len() > 6 || !raw.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = [0u8; 6];
        for (slot, d) in digits.iter_mut().zip(raw) {
            *slot = *d;
        }
        Some(SerialNumber { digits, len: raw.len() as u8 })
    }

    /// The digits as sent.
    pub fn as_bytes(&self) -> &[u8] {
        self.digits.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The number.
    pub fn value(&self) -> u32 {
        self.as_bytes().iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({:?})", self.as_str())
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SerialNumber {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// TSDU Maximum Size (PI 21); 0 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub struct TsduMaxSize {
    /// First two octets: initiator to responder.
    pub initiator_to_responder: u16,
    /// Last two octets: responder to initiator.
    pub responder_to_initiator: u16,
}

// ---------------------------------------------------------------------------
// Unknown parameters

/// One parameter unit kept as it came (code and raw value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Param<'a> {
    /// PI or PGI code.
    pub code: u8,
    /// Raw value (for a PGI: its PI units, unparsed).
    #[serde(serialize_with = "crate::hex::ser")]
    pub value: &'a [u8],
}

/// The parameters of one field that have no typed field, without copying:
/// a view of the raw parameter field that skips the codes the enclosing
/// struct decodes itself. Two `Params` are equal when they yield the same
/// units in the same order.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    raw: &'a [u8],
    known: &'static [u8],
}

impl Default for Params<'_> {
    fn default() -> Self {
        Params::EMPTY
    }
}

impl<'a> Params<'a> {
    /// No parameters.
    pub const EMPTY: Params<'static> = Params { raw: &[], known: &[] };

    /// Parameters from encoded units (`code len value ...`, either length
    /// form). Every unit is yielded by [`Params::iter`]. Do not use codes
    /// that the enclosing struct has a typed field for: those would be
    /// written twice and the result would not parse back.
    pub fn from_raw(raw: &'a [u8]) -> Result<Self> {
        let f = Field { bytes: raw, base: 0, truncated: false, lenient: false };
        let mut pos = 0;
        let mut n = 0;
        while pos < raw.len() {
            if n == MAX_SESSION_PARAMS {
                return Err(too_many(pos));
            }
            n += 1;
            pos = read_unit(&f, pos)?.end;
        }
        Ok(Params { raw, known: &[] })
    }

    /// The units, in the order received.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { rest: self.raw, known: self.known }
    }
    /// No units.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
    /// Number of units.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    /// Value of the first unit with `code`.
    pub fn get(&self, code: u8) -> Option<&'a [u8]> {
        self.iter().find(|p| p.code == code).map(|p| p.value)
    }
}

impl PartialEq for Params<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}
impl Eq for Params<'_> {}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'a> IntoIterator for &Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: &'a [u8],
    known: &'static [u8],
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;
    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let (code, value, rest) = split_unit(self.rest)?;
            self.rest = rest;
            if !self.known.contains(&code) {
                return Some(Param { code, value });
            }
        }
    }
}

/// The first untyped User Data unit of `params`, else the first Extended
/// User Data: what iterating `params` and matching the codes gives.
fn untyped_user_data<'a>(params: &Params<'a>) -> Option<&'a [u8]> {
    if params.raw.is_empty() {
        return None;
    }
    let want_ud = !params.known.contains(&pi::USER_DATA);
    let want_ext = !params.known.contains(&pi::EXTENDED_USER_DATA);
    if !want_ud && !want_ext {
        return None;
    }
    let mut extended = None;
    let mut rest = params.raw;
    while let Some((code, value, r)) = split_unit(rest) {
        rest = r;
        match code {
            pi::USER_DATA if want_ud => return Some(value),
            pi::EXTENDED_USER_DATA if want_ext && extended.is_none() => extended = Some(value),
            _ => {}
        }
    }
    extended
}

/// `code len value` from the front of `b`, or `None` if malformed (only
/// possible for a view not built by this module).
fn split_unit(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&code, r) = b.split_first()?;
    let (&l, r) = r.split_first()?;
    let (n, r) = if l == 255 {
        let (hl, r) = r.split_at_checked(2)?;
        (usize::from(u16::from_be_bytes([hl[0], hl[1]])), r)
    } else {
        (usize::from(l), r)
    };
    let (v, r) = r.split_at_checked(n)?;
    Some((code, v, r))
}

// ---------------------------------------------------------------------------
// Parameter groups and SPDU bodies

fn ser_opt_hex<S: Serializer>(b: &Option<&[u8]>, s: S) -> core::result::Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&crate::hex::encode(b)),
        None => s.serialize_none(),
    }
}

/// Connection Identifier (PGI 1); also the references in Linking Information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ConnectionId<'a> {
    /// PI 9 Called SS-user Reference.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub called_ref: Option<&'a [u8]>,
    /// PI 10 Calling SS-user Reference.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub calling_ref: Option<&'a [u8]>,
    /// PI 11 Common Reference.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub common_ref: Option<&'a [u8]>,
    /// PI 12 Additional Reference Information.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub additional_ref: Option<&'a [u8]>,
    /// Other PIs.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

impl<'a> ConnectionId<'a> {
    /// As the initiator sends it in CN: calling reference and common reference.
    pub fn calling(calling_ref: &'a [u8], common_ref: &'a [u8]) -> Self {
        ConnectionId { calling_ref: Some(calling_ref), common_ref: Some(common_ref), ..Self::default() }
    }
    /// As the responder sends it in AC/RF: called reference and common reference.
    pub fn called(called_ref: &'a [u8], common_ref: &'a [u8]) -> Self {
        ConnectionId { called_ref: Some(called_ref), common_ref: Some(common_ref), ..Self::default() }
    }
}

/// Connect/Accept Item (PGI 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ConnectAcceptItem<'a> {
    /// PI 19 Protocol Options (0x01: extended concatenation receivable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_options: Option<u8>,
    /// PI 21 TSDU Maximum Size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsdu_max_size: Option<TsduMaxSize>,
    /// PI 22 Version Number ([`VERSION_1`] | [`VERSION_2`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// PI 23 Initial Serial Number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_serial: Option<SerialNumber>,
    /// PI 26 Token Setting Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_setting: Option<TokenSetting>,
    /// PI 55 Second Initial Serial Number (raw).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub second_initial_serial: Option<&'a [u8]>,
    /// PI 56 Upper Limit Serial Number (raw).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub upper_limit_serial: Option<&'a [u8]>,
    /// PI 57 Large Initial Serial Number (raw).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub large_initial_serial: Option<&'a [u8]>,
    /// PI 58 Large Second Initial Serial Number (raw).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub large_second_initial_serial: Option<&'a [u8]>,
    /// Other PIs (e.g. the `06 01 02` of the `iec` capture).
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// CN and AC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Connect<'a> {
    /// PGI 1 Connection Identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId<'a>>,
    /// PGI 5 Connect/Accept Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<ConnectAcceptItem<'a>>,
    /// PI 16 Token Item (AC: tokens the acceptor asks for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_item: Option<Tokens>,
    /// PI 20 Session User Requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
    /// PI 51 Calling Session Selector.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub calling_ssel: Option<&'a [u8]>,
    /// PI 52 Called (CN) / Responding (AC) Session Selector.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub called_ssel: Option<&'a [u8]>,
    /// PI 60 Data Overflow (0x01: more connect data follows in CDO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_overflow: Option<u8>,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// PGI 194 Extended User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub extended_user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

impl<'a> Connect<'a> {
    /// A CN or AC the way RTSE sends it: Connect/Accept Item {Protocol
    /// Options 0, `version`, `token_setting`}, `requirements`, User Data.
    pub fn new(version: u8, token_setting: TokenSetting, requirements: Requirements, user_data: &'a [u8]) -> Self {
        Connect {
            item: Some(ConnectAcceptItem {
                protocol_options: Some(0),
                version: Some(version),
                token_setting: Some(token_setting),
                ..ConnectAcceptItem::default()
            }),
            requirements: Some(requirements),
            user_data: Some(user_data),
            ..Connect::default()
        }
    }
    /// With session selectors (PI 51, 52).
    #[must_use]
    pub fn with_ssels(mut self, calling: Option<&'a [u8]>, called: Option<&'a [u8]>) -> Self {
        self.calling_ssel = calling;
        self.called_ssel = called;
        self
    }
    /// With a Connection Identifier (PGI 1).
    #[must_use]
    pub fn with_connection_id(mut self, id: ConnectionId<'a>) -> Self {
        self.connection_id = Some(id);
        self
    }
    /// With a Token Item (AC).
    #[must_use]
    pub fn with_token_item(mut self, tokens: Tokens) -> Self {
        self.token_item = Some(tokens);
        self
    }
    /// PI 22 in the Connect/Accept Item.
    pub fn version(&self) -> Option<u8> {
        self.item.and_then(|i| i.version)
    }
    /// PI 26 in the Connect/Accept Item.
    pub fn token_setting(&self) -> Option<TokenSetting> {
        self.item.and_then(|i| i.token_setting)
    }
    /// PI 26, or all tokens on the initiator's side when absent (X.225,
    /// from memory; RTSE peers always send it).
    pub fn effective_token_setting(&self) -> TokenSetting {
        self.token_setting().unwrap_or(TokenSetting::ALL_INITIATOR)
    }
    /// PI 22, or version 1 when absent.
    pub fn effective_version(&self) -> u8 {
        self.version().unwrap_or(VERSION_1)
    }
}

/// RF Reason Code (PI 50): the code and, for reason 2, the SS-user data
/// that follows it in the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RefuseReason<'a> {
    /// First octet.
    pub code: u8,
    /// The octets after it (user data when `code` is 2).
    #[serde(skip_serializing_if = "<[u8]>::is_empty", serialize_with = "crate::hex::ser")]
    pub data: &'a [u8],
}

/// RF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Refuse<'a> {
    /// PGI 1 Connection Identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId<'a>>,
    /// PI 17 Transport Disconnect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_disconnect: Option<u8>,
    /// PI 20 Session User Requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
    /// PI 22 Version Number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PI 50 Reason Code (+ user data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefuseReason<'a>>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// FN, DN, NF, CD, CDA, CDO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Release<'a> {
    /// PI 17 Transport Disconnect (FN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_disconnect: Option<u8>,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// AB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Abort<'a> {
    /// PI 17 Transport Disconnect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_disconnect: Option<u8>,
    /// PI 49 Reflect Parameter Values.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub reflect: Option<&'a [u8]>,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// GT and PT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TokenTransfer<'a> {
    /// PI 16 Token Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_item: Option<Tokens>,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data (PT: RT-TURN-PLEASE priority).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

impl TokenTransfer<'_> {
    /// The Token Item, or no tokens when absent.
    pub fn tokens(&self) -> Tokens {
        self.token_item.unwrap_or(Tokens::NONE)
    }
}

/// AA, GTC, GTA, AIA, ADA: no parameters defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Empty<'a> {
    /// Parameters sent anyway.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// DT, TD, EX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Data<'a> {
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
    /// The user-information field (after the parameter field, to the end of
    /// the TSDU).
    #[serde(serialize_with = "crate::hex::ser")]
    pub user_info: &'a [u8],
}

/// MIP, MIA, MAP, MAA, AE, AEA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Sync<'a> {
    /// PI 15 Sync Type Item (MIP: 0x01 = no explicit confirmation; MAP:
    /// 0x01 = activity not ended). An AE whose Sync Type has bit 0x01 set
    /// is decoded as MAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_type: Option<u8>,
    /// PI 42 Serial Number (mandatory).
    pub serial: SerialNumber,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

impl Sync<'_> {
    /// MIP: whether the sender asks for explicit confirmation (no Sync Type
    /// Item, or its bit 0x01 clear).
    pub fn confirm_required(&self) -> bool {
        self.sync_type.is_none_or(|t| t & SYNC_NO_CONFIRM == 0)
    }
}

/// RS, RA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Resync<'a> {
    /// PI 26 Token Setting Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_setting: Option<TokenSetting>,
    /// PI 27 Resync Type (RS: 0 restart, 1 abandon, 2 set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync_type: Option<u8>,
    /// PI 42 Serial Number (mandatory).
    pub serial: SerialNumber,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ActivityStart<'a> {
    /// PI 41 Activity Identifier (mandatory; RTSE: a BER INTEGER).
    #[serde(serialize_with = "crate::hex::ser")]
    pub activity_id: &'a [u8],
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// Linking Information (PGI 33) of AR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Linking<'a> {
    /// PI 9 Called SS-user Reference (of the old connection).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub called_ref: Option<&'a [u8]>,
    /// PI 10 Calling SS-user Reference.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub calling_ref: Option<&'a [u8]>,
    /// PI 11 Common Reference.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub common_ref: Option<&'a [u8]>,
    /// PI 12 Additional Reference Information.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub additional_ref: Option<&'a [u8]>,
    /// PI 41 old Activity Identifier (mandatory).
    #[serde(serialize_with = "crate::hex::ser")]
    pub old_activity_id: &'a [u8],
    /// PI 42 Serial Number to resume from (mandatory).
    pub serial: SerialNumber,
    /// Other PIs.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

impl<'a> Linking<'a> {
    /// Old activity and serial number, no references.
    pub fn new(old_activity_id: &'a [u8], serial: SerialNumber) -> Self {
        Linking { old_activity_id, serial, ..Linking::default() }
    }
    /// With the old connection's calling and common references.
    #[must_use]
    pub fn with_refs(mut self, calling_ref: Option<&'a [u8]>, common_ref: Option<&'a [u8]>) -> Self {
        self.calling_ref = calling_ref;
        self.common_ref = common_ref;
        self
    }
}

/// AR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ActivityResume<'a> {
    /// PGI 33 Linking Information (mandatory).
    pub linking: Linking<'a>,
    /// PI 41 new Activity Identifier (mandatory).
    #[serde(serialize_with = "crate::hex::ser")]
    pub activity_id: &'a [u8],
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// AI, AD, ED, ER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Reasoned<'a> {
    /// PI 49 Reflect Parameter Values (ER).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub reflect: Option<&'a [u8]>,
    /// PI 50 Reason Code (1 octet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<u8>,
    /// PI 25 Enclosure Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<u8>,
    /// PGI 193 User Data (ED).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_hex")]
    pub user_data: Option<&'a [u8]>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// OA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct OverflowAccept<'a> {
    /// PI 21 TSDU Maximum Size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsdu_max_size: Option<TsduMaxSize>,
    /// PI 22 Version Number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

/// PR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Prepare<'a> {
    /// PI 24 Prepare Type (1 MAA, 2 RS, 3 RA, 4 AB; mandatory).
    pub prepare_type: u8,
    /// Other parameters.
    #[serde(skip_serializing_if = "Params::is_empty")]
    pub params: Params<'a>,
}

// ---------------------------------------------------------------------------
// The SPDU

/// One SPDU. JSON: `{"pdu": "CN", ...fields}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "pdu")]
#[allow(missing_docs)]
pub enum Spdu<'a> {
    #[serde(rename = "CN")]
    Cn(Box<Connect<'a>>),
    #[serde(rename = "AC")]
    Ac(Box<Connect<'a>>),
    #[serde(rename = "RF")]
    Rf(Box<Refuse<'a>>),
    #[serde(rename = "FN")]
    Fn(Release<'a>),
    #[serde(rename = "DN")]
    Dn(Release<'a>),
    #[serde(rename = "NF")]
    Nf(Release<'a>),
    #[serde(rename = "AB")]
    Ab(Abort<'a>),
    #[serde(rename = "AA")]
    Aa(Empty<'a>),
    #[serde(rename = "DT")]
    Dt(Data<'a>),
    #[serde(rename = "GT")]
    Gt(TokenTransfer<'a>),
    #[serde(rename = "PT")]
    Pt(TokenTransfer<'a>),
    #[serde(rename = "GTC")]
    Gtc(Empty<'a>),
    #[serde(rename = "GTA")]
    Gta(Empty<'a>),
    #[serde(rename = "MIP")]
    Mip(Sync<'a>),
    #[serde(rename = "MIA")]
    Mia(Sync<'a>),
    #[serde(rename = "MAP")]
    Map(Sync<'a>),
    #[serde(rename = "MAA")]
    Maa(Sync<'a>),
    #[serde(rename = "RS")]
    Rs(Resync<'a>),
    #[serde(rename = "RA")]
    Ra(Resync<'a>),
    #[serde(rename = "AS")]
    As(ActivityStart<'a>),
    #[serde(rename = "AR")]
    Ar(Box<ActivityResume<'a>>),
    #[serde(rename = "AI")]
    Ai(Reasoned<'a>),
    #[serde(rename = "AIA")]
    Aia(Empty<'a>),
    #[serde(rename = "AD")]
    Ad(Reasoned<'a>),
    #[serde(rename = "ADA")]
    Ada(Empty<'a>),
    #[serde(rename = "AE")]
    Ae(Sync<'a>),
    #[serde(rename = "AEA")]
    Aea(Sync<'a>),
    #[serde(rename = "CD")]
    Cd(Release<'a>),
    #[serde(rename = "CDA")]
    Cda(Release<'a>),
    #[serde(rename = "ED")]
    Ed(Reasoned<'a>),
    #[serde(rename = "ER")]
    Er(Reasoned<'a>),
    #[serde(rename = "TD")]
    Td(Data<'a>),
    #[serde(rename = "CDO")]
    Cdo(Release<'a>),
    #[serde(rename = "OA")]
    Oa(OverflowAccept<'a>),
    #[serde(rename = "PR")]
    Pr(Prepare<'a>),
    #[serde(rename = "EX")]
    Ex(Data<'a>),
}

impl<'a> Spdu<'a> {
    /// Which SPDU this is.
    pub const fn kind(&self) -> SpduKind {
        use SpduKind as K;
        match self {
            Spdu::Cn(_) => K::Cn,
            Spdu::Ac(_) => K::Ac,
            Spdu::Rf(_) => K::Rf,
            Spdu::Fn(_) => K::Fn,
            Spdu::Dn(_) => K::Dn,
            Spdu::Nf(_) => K::Nf,
            Spdu::Ab(_) => K::Ab,
            Spdu::Aa(_) => K::Aa,
            Spdu::Dt(_) => K::Dt,
            Spdu::Gt(_) => K::Gt,
            Spdu::Pt(_) => K::Pt,
            Spdu::Gtc(_) => K::Gtc,
            Spdu::Gta(_) => K::Gta,
            Spdu::Mip(_) => K::Mip,
            Spdu::Mia(_) => K::Mia,
            Spdu::Map(_) => K::Map,
            Spdu::Maa(_) => K::Maa,
            Spdu::Rs(_) => K::Rs,
            Spdu::Ra(_) => K::Ra,
            Spdu::As(_) => K::As,
            Spdu::Ar(_) => K::Ar,
            Spdu::Ai(_) => K::Ai,
            Spdu::Aia(_) => K::Aia,
            Spdu::Ad(_) => K::Ad,
            Spdu::Ada(_) => K::Ada,
            Spdu::Ae(_) => K::Ae,
            Spdu::Aea(_) => K::Aea,
            Spdu::Cd(_) => K::Cd,
            Spdu::Cda(_) => K::Cda,
            Spdu::Ed(_) => K::Ed,
            Spdu::Er(_) => K::Er,
            Spdu::Td(_) => K::Td,
            Spdu::Cdo(_) => K::Cdo,
            Spdu::Oa(_) => K::Oa,
            Spdu::Pr(_) => K::Pr,
            Spdu::Ex(_) => K::Ex,
        }
    }

    /// Standard abbreviation (`"CN"`, `"GTC"`...).
    pub const fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Concatenation category.
    pub const fn category(&self) -> Category {
        self.kind().category()
    }

    /// SPDU identifier on the wire.
    pub const fn si(&self) -> u8 {
        self.kind().si()
    }

    /// The parameters kept without a typed field.
    pub fn params(&self) -> Params<'a> {
        match self {
            Spdu::Cn(b) | Spdu::Ac(b) => b.params,
            Spdu::Rf(b) => b.params,
            Spdu::Fn(b) | Spdu::Dn(b) | Spdu::Nf(b) | Spdu::Cd(b) | Spdu::Cda(b) | Spdu::Cdo(b) => b.params,
            Spdu::Ab(b) => b.params,
            Spdu::Aa(b) | Spdu::Gtc(b) | Spdu::Gta(b) | Spdu::Aia(b) | Spdu::Ada(b) => b.params,
            Spdu::Dt(b) | Spdu::Td(b) | Spdu::Ex(b) => b.params,
            Spdu::Gt(b) | Spdu::Pt(b) => b.params,
            Spdu::Mip(b) | Spdu::Mia(b) | Spdu::Map(b) | Spdu::Maa(b) | Spdu::Ae(b) | Spdu::Aea(b) => b.params,
            Spdu::Rs(b) | Spdu::Ra(b) => b.params,
            Spdu::As(b) => b.params,
            Spdu::Ar(b) => b.params,
            Spdu::Ai(b) | Spdu::Ad(b) | Spdu::Ed(b) | Spdu::Er(b) => b.params,
            Spdu::Oa(b) => b.params,
            Spdu::Pr(b) => b.params,
        }
    }

    /// The SS-user's octets: the user-information field of DT/TD/EX; the
    /// octets after the reason code of an RF with reason 2; otherwise User
    /// Data (PGI 193), else Extended User Data (PGI 194), typed or kept in
    /// [`Spdu::params`].
    pub fn user_data(&self) -> Option<&'a [u8]> {
        let typed = match self {
            Spdu::Dt(b) | Spdu::Td(b) | Spdu::Ex(b) => return Some(b.user_info),
            Spdu::Cn(b) | Spdu::Ac(b) => b.user_data.or(b.extended_user_data),
            Spdu::Rf(b) => b.reason.filter(|r| r.code == RF_REJECTED_BY_USER).map(|r| r.data),
            Spdu::Fn(b) | Spdu::Dn(b) | Spdu::Nf(b) | Spdu::Cd(b) | Spdu::Cda(b) | Spdu::Cdo(b) => b.user_data,
            Spdu::Ab(b) => b.user_data,
            Spdu::Gt(b) | Spdu::Pt(b) => b.user_data,
            Spdu::Mip(b) | Spdu::Mia(b) | Spdu::Map(b) | Spdu::Maa(b) | Spdu::Ae(b) | Spdu::Aea(b) => b.user_data,
            Spdu::Rs(b) | Spdu::Ra(b) => b.user_data,
            Spdu::As(b) => b.user_data,
            Spdu::Ar(b) => b.user_data,
            Spdu::Ai(b) | Spdu::Ad(b) | Spdu::Ed(b) | Spdu::Er(b) => b.user_data,
            Spdu::Aa(_) | Spdu::Gtc(_) | Spdu::Gta(_) | Spdu::Aia(_) | Spdu::Ada(_) | Spdu::Oa(_) | Spdu::Pr(_) => None,
        };
        typed.or_else(|| {
            // One pass over the untyped parameters: User Data, else
            // Extended User Data. A code the SPDU types (in `known`) is
            // never untyped: decided once, not per unit as `Params::iter`
            // would.
            untyped_user_data(&self.params())
        })
    }

    /// Token Item of GT, PT or AC.
    pub fn token_item(&self) -> Option<Tokens> {
        match self {
            Spdu::Gt(b) | Spdu::Pt(b) => b.token_item,
            Spdu::Ac(b) | Spdu::Cn(b) => b.token_item,
            _ => None,
        }
    }

    /// Serial Number of MIP, MIA, MAP, MAA, AE, AEA, RS, RA (AR: the one in
    /// its Linking Information).
    pub fn serial(&self) -> Option<SerialNumber> {
        match self {
            Spdu::Mip(b) | Spdu::Mia(b) | Spdu::Map(b) | Spdu::Maa(b) | Spdu::Ae(b) | Spdu::Aea(b) => Some(b.serial),
            Spdu::Rs(b) | Spdu::Ra(b) => Some(b.serial),
            Spdu::Ar(b) => Some(b.linking.serial),
            _ => None,
        }
    }

    /// Activity Identifier of AS or AR (the new one).
    pub fn activity_id(&self) -> Option<&'a [u8]> {
        match self {
            Spdu::As(b) => Some(b.activity_id),
            Spdu::Ar(b) => Some(b.activity_id),
            _ => None,
        }
    }

    // ----- constructors for what RTSE sends

    /// GT without parameters (`01 00`), the concatenation prefix.
    pub fn gt_empty() -> Self {
        Spdu::Gt(TokenTransfer::default())
    }
    /// GT giving `tokens` (S-TOKEN-GIVE).
    pub fn gt(tokens: Tokens) -> Self {
        Spdu::Gt(TokenTransfer { token_item: Some(tokens), ..TokenTransfer::default() })
    }
    /// PT asking for `tokens` (RT-TURN-PLEASE: [`Tokens::DATA`] as ISODE does).
    pub fn pt(tokens: Tokens, user_data: Option<&'a [u8]>) -> Self {
        Spdu::Pt(TokenTransfer { token_item: Some(tokens), user_data, ..TokenTransfer::default() })
    }
    /// GTC (`15 00`, RT-TURN-GIVE).
    pub fn gtc() -> Self {
        Spdu::Gtc(Empty::default())
    }
    /// GTA (`16 00`).
    pub fn gta() -> Self {
        Spdu::Gta(Empty::default())
    }
    /// AA (`1A 00`).
    pub fn aa() -> Self {
        Spdu::Aa(Empty::default())
    }
    /// AIA.
    pub fn aia() -> Self {
        Spdu::Aia(Empty::default())
    }
    /// ADA.
    pub fn ada() -> Self {
        Spdu::Ada(Empty::default())
    }
    /// DT with `user_info`.
    pub fn dt(user_info: &'a [u8]) -> Self {
        Spdu::Dt(Data { user_info, ..Data::default() })
    }
    /// AS with `activity_id` (RTSE: a BER INTEGER, e.g. `02 01 01`).
    pub fn as_(activity_id: &'a [u8]) -> Self {
        Spdu::As(ActivityStart { activity_id, ..ActivityStart::default() })
    }
    /// AR resuming the activity in `linking` as `activity_id`.
    pub fn ar(linking: Linking<'a>, activity_id: &'a [u8]) -> Self {
        Spdu::Ar(Box::new(ActivityResume { linking, activity_id, ..ActivityResume::default() }))
    }
    /// MIP; `confirm` = explicit confirmation required (no Sync Type Item).
    pub fn mip(serial: SerialNumber, confirm: bool) -> Self {
        let sync_type = if confirm { None } else { Some(SYNC_NO_CONFIRM) };
        Spdu::Mip(Sync { sync_type, serial, ..Sync::default() })
    }
    /// MIA.
    pub fn mia(serial: SerialNumber) -> Self {
        Spdu::Mia(Sync { serial, ..Sync::default() })
    }
    /// MAP; `activity_not_ended` sets Sync Type 0x01.
    pub fn map(serial: SerialNumber, activity_not_ended: bool) -> Self {
        let sync_type = if activity_not_ended { Some(SYNC_ACTIVITY_NOT_ENDED) } else { None };
        Spdu::Map(Sync { sync_type, serial, ..Sync::default() })
    }
    /// MAA.
    pub fn maa(serial: SerialNumber) -> Self {
        Spdu::Maa(Sync { serial, ..Sync::default() })
    }
    /// AE.
    pub fn ae(serial: SerialNumber) -> Self {
        Spdu::Ae(Sync { serial, ..Sync::default() })
    }
    /// AEA.
    pub fn aea(serial: SerialNumber) -> Self {
        Spdu::Aea(Sync { serial, ..Sync::default() })
    }
    /// AI with an optional reason.
    pub fn ai(reason: Option<u8>) -> Self {
        Spdu::Ai(Reasoned { reason, ..Reasoned::default() })
    }
    /// AD with an optional reason.
    pub fn ad(reason: Option<u8>) -> Self {
        Spdu::Ad(Reasoned { reason, ..Reasoned::default() })
    }
    /// ED (S-U-EXCEPTION-REPORT).
    pub fn ed(reason: u8, user_data: Option<&'a [u8]>) -> Self {
        Spdu::Ed(Reasoned { reason: Some(reason), user_data, ..Reasoned::default() })
    }
    /// AB with Transport Disconnect `transport_disconnect` ([`TD_RELEASE`] | ...).
    pub fn ab(transport_disconnect: u8, user_data: Option<&'a [u8]>) -> Self {
        Spdu::Ab(Abort { transport_disconnect: Some(transport_disconnect), user_data, ..Abort::default() })
    }
    /// FN.
    pub fn fn_(transport_disconnect: Option<u8>, user_data: Option<&'a [u8]>) -> Self {
        Spdu::Fn(Release { transport_disconnect, user_data, ..Release::default() })
    }
    /// DN.
    pub fn dn(user_data: Option<&'a [u8]>) -> Self {
        Spdu::Dn(Release { user_data, ..Release::default() })
    }
    /// CN.
    pub fn cn(connect: Connect<'a>) -> Self {
        Spdu::Cn(Box::new(connect))
    }
    /// AC.
    pub fn ac(accept: Connect<'a>) -> Self {
        Spdu::Ac(Box::new(accept))
    }
    /// RF with Reason Code `code` followed by `data` (user data for reason 2).
    pub fn rf(code: u8, data: &'a [u8]) -> Self {
        Spdu::Rf(Box::new(Refuse { reason: Some(RefuseReason { code, data }), ..Refuse::default() }))
    }
}

// ---------------------------------------------------------------------------
// Context, repairs, TSDU

/// What the caller knows about the session connection, for the SI codes
/// that the bytes alone do not decide, and the strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// The functional units in force (the AC's Session User Requirements),
    /// if known. Without activity management every SI 41 is MAP and SI 42
    /// MAA.
    pub requirements: Option<Requirements>,
    /// The last SI-41 SPDU of the other direction (MAP or AE): SI 42 is its
    /// acknowledgement (MAA or AEA). `None`: see [`Context::requirements`],
    /// else AEA.
    pub last_major: Option<SpduKind>,
    /// Both sides set Protocol Options bit 0x01: several category-2 SPDUs
    /// may follow the category-0 one.
    pub extended_concatenation: bool,
    /// Repair known encoder bugs instead of failing (see the module docs).
    pub lenient: bool,
}

impl Context {
    /// Strict, no knowledge of the connection.
    pub const STRICT: Context =
        Context { requirements: None, last_major: None, extended_concatenation: false, lenient: false };
    /// Lenient, no knowledge of the connection.
    pub const LENIENT: Context = Context { lenient: true, ..Context::STRICT };

    fn activity_management(&self) -> bool {
        self.requirements.is_none_or(|r| r.contains(Requirements::ACTIVITY_MANAGEMENT))
    }
}

/// What lenient parsing repaired in a TSDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repairs(pub u8);

impl Repairs {
    /// An LI longer than the TSDU was cut at its end.
    pub const LI_CLAMPED: Repairs = Repairs(0x01);
    /// User Data of length 0 followed by octets: the rest of the parameter
    /// field was taken as the user data.
    pub const USER_DATA_TAKES_REST: Repairs = Repairs(0x02);
    /// The TSDU broke the concatenation rules.
    pub const CONCATENATION: Repairs = Repairs(0x04);

    /// Nothing repaired.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether `other` was repaired.
    pub const fn contains(self, other: Repairs) -> bool {
        self.0 & other.0 == other.0
    }
    fn insert(&mut self, other: Repairs) {
        self.0 |= other.0;
    }
}

const REPAIR_NAMES: [&str; 3] = ["li-clamped", "user-data-takes-rest", "concatenation"];

impl Serialize for Repairs {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        serialize_bits(s, u16::from(self.0), &REPAIR_NAMES)
    }
}

/// SPDUs a [`Tsdu`] holds inline: basic concatenation (X.225 6.3.7) puts
/// at most two SPDUs in a TSDU, a category-0 token SPDU and a category-2
/// one, so every TSDU RTSE sends fits.
const INLINE_SPDUS: usize = 2;

/// The SPDUs of one TSDU, in order: the first two inline (no heap for token
/// and data TSDUs; the large, rare connect SPDUs are boxed), the rest of an
/// extended-concatenation TSDU (at most [`MAX_CONCATENATED_SPDUS`]) in a
/// `Vec`. Inline storage is kept to two because a decoded `Tsdu` travels by
/// value inside every stack.
#[derive(Clone, PartialEq, Eq)]
pub struct Tsdu<'a> {
    // Invariant: `head` is filled in order, `more` is empty unless `head`
    // is full.
    head: [Option<Spdu<'a>>; INLINE_SPDUS],
    more: Vec<Spdu<'a>>,
    repairs: Repairs,
}

impl Default for Tsdu<'_> {
    fn default() -> Self {
        // Spelled out: `[const { None }; INLINE_SPDUS]` was built on the
        // stack and copied (160 octets) into every new stack's Tsdu.
        const _: () = assert!(INLINE_SPDUS == 2);
        Tsdu { head: [None, None], more: Vec::new(), repairs: Repairs::default() }
    }
}

impl<'a> Tsdu<'a> {
    /// No SPDUs.
    pub fn new() -> Self {
        Self::default()
    }
    /// One SPDU (a category-1 SPDU, or a lone GT/PT).
    pub fn one(spdu: Spdu<'a>) -> Self {
        let mut t = Self::new();
        t.push_unchecked(spdu);
        t
    }
    /// A category-0 SPDU followed by a category-2 one (e.g. GT + DT).
    pub fn pair(first: Spdu<'a>, second: Spdu<'a>) -> Self {
        let mut t = Self::one(first);
        t.push_unchecked(second);
        t
    }
    /// `spdu` after the empty GT: how every category-2 SPDU travels.
    pub fn after_gt(spdu: Spdu<'a>) -> Self {
        Self::pair(Spdu::gt_empty(), spdu)
    }
    fn push_unchecked(&mut self, spdu: Spdu<'a>) {
        let _ = self.push(spdu);
    }
    /// Append; `false` (and the TSDU unchanged) when it already holds
    /// [`MAX_CONCATENATED_SPDUS`].
    #[must_use]
    pub fn push(&mut self, spdu: Spdu<'a>) -> bool {
        if let Some(slot) = self.head.iter_mut().find(|s| s.is_none()) {
            *slot = Some(spdu);
            return true;
        }
        if INLINE_SPDUS + self.more.len() >= MAX_CONCATENATED_SPDUS {
            return false;
        }
        self.more.push(spdu);
        true
    }
    /// Number of SPDUs.
    pub fn len(&self) -> usize {
        self.head.iter().filter(|s| s.is_some()).count() + self.more.len()
    }
    /// No SPDU.
    pub fn is_empty(&self) -> bool {
        self.head[0].is_none()
    }
    /// The `i`-th SPDU.
    pub fn get(&self, i: usize) -> Option<&Spdu<'a>> {
        match i.checked_sub(INLINE_SPDUS) {
            None => self.head[i].as_ref(),
            Some(j) => self.more.get(j),
        }
    }
    /// The first SPDU.
    pub fn first(&self) -> Option<&Spdu<'a>> {
        self.get(0)
    }
    /// The last SPDU (the one that carries the meaning: DT, MIP, ... or the
    /// lone category-1 / category-0 SPDU).
    pub fn last(&self) -> Option<&Spdu<'a>> {
        self.more.last().or_else(|| self.head.iter().rev().find_map(Option::as_ref))
    }
    /// The SPDUs in order.
    pub fn iter(&self) -> SpduIter<'_, 'a> {
        SpduIter { head: self.head.iter(), more: self.more.iter() }
    }
    /// What lenient parsing repaired (empty in strict mode).
    pub fn repairs(&self) -> Repairs {
        self.repairs
    }
}

/// Iterator over the SPDUs of a [`Tsdu`].
#[derive(Debug, Clone)]
pub struct SpduIter<'s, 'a> {
    head: core::slice::Iter<'s, Option<Spdu<'a>>>,
    more: core::slice::Iter<'s, Spdu<'a>>,
}

impl<'s, 'a> Iterator for SpduIter<'s, 'a> {
    type Item = &'s Spdu<'a>;
    fn next(&mut self) -> Option<&'s Spdu<'a>> {
        match self.head.next() {
            Some(Some(s)) => Some(s),
            _ => self.more.next(),
        }
    }
}

impl<'s, 'a> IntoIterator for &'s Tsdu<'a> {
    type Item = &'s Spdu<'a>;
    type IntoIter = SpduIter<'s, 'a>;
    fn into_iter(self) -> SpduIter<'s, 'a> {
        self.iter()
    }
}

impl fmt::Debug for Tsdu<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Tsdu");
        d.field("spdus", &SpduList(self));
        if !self.repairs.is_empty() {
            d.field("repairs", &self.repairs);
        }
        d.finish()
    }
}

struct SpduList<'t, 'a>(&'t Tsdu<'a>);
impl fmt::Debug for SpduList<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}
impl Serialize for SpduList<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl Serialize for Tsdu<'_> {
    /// `{"spdus": [...], "repairs": [...]}` (`repairs` only when non-empty).
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let n = if self.repairs.is_empty() { 1 } else { 2 };
        let mut st = s.serialize_struct("Tsdu", n)?;
        st.serialize_field("spdus", &SpduList(self))?;
        if !self.repairs.is_empty() {
            st.serialize_field("repairs", &self.repairs)?;
        } else {
            st.skip_field("repairs")?;
        }
        st.end()
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// A parameter field (or PGI value) being parsed.
struct Field<'a> {
    /// Its octets (cut at the end of the input when `truncated`).
    bytes: &'a [u8],
    /// Offset of `bytes[0]` in the slice the caller parses.
    base: usize,
    /// The input ended before the field did.
    truncated: bool,
    /// Apply the lenient user-data repair.
    lenient: bool,
}

/// One parameter unit.
struct Unit<'a> {
    code: u8,
    value: &'a [u8],
    /// Offset of the code octet.
    at: usize,
    /// Offset of the value.
    value_at: usize,
    /// Index in the field after the unit.
    end: usize,
}

fn too_many(at: usize) -> Error {
    Error::new(L, at, "at most 64 parameters in a field", Found::Other("more parameters"))
}

fn field_end(f: &Field<'_>, idx: usize, expected: &'static str) -> Error {
    if f.truncated {
        Error::eof(L, f.base + f.bytes.len(), expected)
    } else {
        Error::new(L, f.base + idx, expected, Found::Other("end of parameter field"))
    }
}

fn read_unit<'a>(f: &Field<'a>, pos: usize) -> Result<Unit<'a>> {
    let b = f.bytes;
    let Some(&code) = b.get(pos) else {
        return Err(field_end(f, pos, "parameter code"));
    };
    let (n, value_start) = match b.get(pos + 1) {
        None => return Err(field_end(f, pos + 1, "parameter length")),
        Some(&255) => match (b.get(pos + 2), b.get(pos + 3)) {
            (Some(&h), Some(&l)) => (usize::from(u16::from_be_bytes([h, l])), pos + 4),
            _ => return Err(field_end(f, b.len(), "3-octet parameter length")),
        },
        Some(&l) => (usize::from(l), pos + 2),
    };
    let end = value_start + n;
    let Some(value) = b.get(value_start..end) else {
        return Err(if f.truncated {
            Error::eof(L, f.base + b.len(), "parameter value")
        } else {
            Error::new(L, f.base + pos + 1, "parameter value within the parameter field", Found::Length(n))
        });
    };
    Ok(Unit { code, value, at: f.base + pos, value_at: f.base + value_start, end })
}

/// Codes seen in one field.
#[derive(Default)]
struct Seen([u64; 4]);
impl Seen {
    fn insert(&mut self, code: u8) -> bool {
        let bit = 1u64 << (code & 63);
        let w = &mut self.0[usize::from(code >> 6)];
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }
    fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code >> 6)] & (1u64 << (code & 63)) != 0
    }
}

/// A struct decoded from one parameter field.
trait Fields<'a>: Default {
    /// The codes it has typed fields for.
    const KNOWN: &'static [u8];
    /// The codes that must be present.
    const REQUIRED: &'static [u8] = &[];
    /// Store one unit whose code is in `KNOWN`.
    fn take(&mut self, u: &Unit<'a>) -> Result<()>;
    fn set_params(&mut self, p: Params<'a>);
}

fn missing_name(code: u8) -> &'static str {
    match code {
        pi::SERIAL => "Serial Number (PI 42)",
        pi::ACTIVITY_ID => "Activity Identifier (PI 41)",
        pi::LINKING => "Linking Information (PGI 33)",
        pi::PREPARE_TYPE => "Prepare Type (PI 24)",
        _ => "mandatory parameter",
    }
}

fn parse_fields<'a, F: Fields<'a>>(f: &Field<'a>, repairs: &mut Repairs) -> Result<F> {
    let mut out = F::default();
    parse_fields_into(f, repairs, &mut out)?;
    Ok(out)
}

/// [`parse_fields`] into a box, filled in place: a `Connect` is a few
/// hundred octets, and each move of it (out of the parser, out of the
/// `Result`, into the box) a copy.
fn parse_boxed<'a, F: Fields<'a>>(f: &Field<'a>, repairs: &mut Repairs) -> Result<Box<F>> {
    let mut out = Box::<F>::default();
    parse_fields_into(f, repairs, &mut *out)?;
    Ok(out)
}

/// Fill `out` (default on entry) from the parameter field `f`.
fn parse_fields_into<'a, F: Fields<'a>>(f: &Field<'a>, repairs: &mut Repairs, out: &mut F) -> Result<()> {
    let mut seen = Seen::default();
    let mut pos = 0;
    let mut count = 0;
    let mut raw_end = f.bytes.len();
    while pos < f.bytes.len() {
        if count == MAX_SESSION_PARAMS {
            return Err(too_many(f.base + pos));
        }
        count += 1;
        let mut u = read_unit(f, pos)?;
        if F::KNOWN.contains(&u.code) {
            if !seen.insert(u.code) {
                return Err(Error::new(L, u.at, "parameter not already present", Found::Byte(u.code)));
            }
            // X.225 v2: Extended User Data (PGI 194) carries connect data
            // too long for User Data (PGI 193); one or the other. (Both,
            // empty User Data first, would also be ambiguous with the
            // lenient `iec` repair below.)
            let other = match u.code {
                pi::USER_DATA => Some(pi::EXTENDED_USER_DATA),
                pi::EXTENDED_USER_DATA => Some(pi::USER_DATA),
                _ => None,
            };
            if other.is_some_and(|o| seen.contains(o)) {
                return Err(Error::new(
                    L,
                    u.at,
                    "User Data (PGI 193) or Extended User Data (PGI 194), not both",
                    Found::Byte(u.code),
                ));
            }
            if f.lenient && u.code == pi::USER_DATA && u.value.is_empty() && u.end < f.bytes.len() {
                // The `iec` AC: `c1 00` and then the user data.
                u.value = f.bytes.get(u.end..).unwrap_or(&[]);
                raw_end = u.end;
                repairs.insert(Repairs::USER_DATA_TAKES_REST);
                out.take(&u)?;
                break;
            }
            out.take(&u)?;
        }
        pos = u.end;
    }
    if f.truncated {
        return Err(Error::eof(L, f.base + f.bytes.len(), "parameter field of the length in LI"));
    }
    if let Some(&code) = F::REQUIRED.iter().find(|c| !seen.contains(**c)) {
        return Err(Error::new(L, f.base + f.bytes.len(), missing_name(code), Found::Other("end of parameter field")));
    }
    out.set_params(Params { raw: f.bytes.get(..raw_end).unwrap_or(&[]), known: F::KNOWN });
    Ok(())
}

fn one(u: &Unit<'_>, what: &'static str) -> Result<u8> {
    match u.value {
        [v] => Ok(*v),
        v => Err(Error::new(L, u.at, what, Found::Length(v.len()))),
    }
}

fn requirements(u: &Unit<'_>) -> Result<Requirements> {
    match u.value {
        [a, b] => Ok(Requirements(u16::from_be_bytes([*a, *b]))),
        v => Err(Error::new(L, u.at, "2-octet Session User Requirements", Found::Length(v.len()))),
    }
}

fn tsdu_max_size(u: &Unit<'_>) -> Result<TsduMaxSize> {
    match u.value {
        [a, b, c, d] => Ok(TsduMaxSize {
            initiator_to_responder: u16::from_be_bytes([*a, *b]),
            responder_to_initiator: u16::from_be_bytes([*c, *d]),
        }),
        v => Err(Error::new(L, u.at, "4-octet TSDU Maximum Size", Found::Length(v.len()))),
    }
}

fn serial(u: &Unit<'_>) -> Result<SerialNumber> {
    if u.value.is_empty() || u.value.len() > 6 {
        return Err(Error::new(L, u.at, "Serial Number of 1 to 6 decimal digits", Found::Length(u.value.len())));
    }
    if let Some((i, &b)) = u.value.iter().enumerate().find(|(_, b)| !b.is_ascii_digit()) {
        return Err(Error::new(L, u.value_at + i, "decimal digit of a Serial Number", Found::Byte(b)));
    }
    SerialNumber::from_digits(u.value).ok_or(Error::new(
        L,
        u.at,
        "Serial Number of 1 to 6 decimal digits",
        Found::Length(u.value.len()),
    ))
}

fn group<'a, F: Fields<'a>>(u: &Unit<'a>) -> Result<F> {
    let f = Field { bytes: u.value, base: u.value_at, truncated: false, lenient: false };
    parse_fields(&f, &mut Repairs::default())
}

const ENCL: &str = "1-octet Enclosure Item";

impl<'a> Fields<'a> for ConnectionId<'a> {
    const KNOWN: &'static [u8] = &[pi::CALLED_REF, pi::CALLING_REF, pi::COMMON_REF, pi::ADDITIONAL_REF];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::CALLED_REF => self.called_ref = Some(u.value),
            pi::CALLING_REF => self.calling_ref = Some(u.value),
            pi::COMMON_REF => self.common_ref = Some(u.value),
            pi::ADDITIONAL_REF => self.additional_ref = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for ConnectAcceptItem<'a> {
    const KNOWN: &'static [u8] = &[
        pi::PROTOCOL_OPTIONS,
        pi::TSDU_MAX_SIZE,
        pi::VERSION,
        pi::INITIAL_SERIAL,
        pi::TOKEN_SETTING,
        pi::SECOND_INITIAL_SERIAL,
        pi::UPPER_LIMIT_SERIAL,
        pi::LARGE_INITIAL_SERIAL,
        pi::LARGE_SECOND_INITIAL_SERIAL,
    ];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::PROTOCOL_OPTIONS => self.protocol_options = Some(one(u, "1-octet Protocol Options")?),
            pi::TSDU_MAX_SIZE => self.tsdu_max_size = Some(tsdu_max_size(u)?),
            pi::VERSION => self.version = Some(one(u, "1-octet Version Number")?),
            pi::INITIAL_SERIAL => self.initial_serial = Some(serial(u)?),
            pi::TOKEN_SETTING => self.token_setting = Some(TokenSetting(one(u, "1-octet Token Setting Item")?)),
            pi::SECOND_INITIAL_SERIAL => self.second_initial_serial = Some(u.value),
            pi::UPPER_LIMIT_SERIAL => self.upper_limit_serial = Some(u.value),
            pi::LARGE_INITIAL_SERIAL => self.large_initial_serial = Some(u.value),
            pi::LARGE_SECOND_INITIAL_SERIAL => self.large_second_initial_serial = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Connect<'a> {
    const KNOWN: &'static [u8] = &[
        pi::CONNECTION_ID,
        pi::CONNECT_ACCEPT_ITEM,
        pi::TOKEN_ITEM,
        pi::REQUIREMENTS,
        pi::ENCLOSURE,
        pi::CALLING_SSEL,
        pi::CALLED_SSEL,
        pi::DATA_OVERFLOW,
        pi::USER_DATA,
        pi::EXTENDED_USER_DATA,
    ];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::CONNECTION_ID => self.connection_id = Some(group(u)?),
            pi::CONNECT_ACCEPT_ITEM => self.item = Some(group(u)?),
            pi::TOKEN_ITEM => self.token_item = Some(Tokens(one(u, "1-octet Token Item")?)),
            pi::REQUIREMENTS => self.requirements = Some(requirements(u)?),
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::CALLING_SSEL => self.calling_ssel = Some(u.value),
            pi::CALLED_SSEL => self.called_ssel = Some(u.value),
            pi::DATA_OVERFLOW => self.data_overflow = Some(one(u, "1-octet Data Overflow")?),
            pi::USER_DATA => self.user_data = Some(u.value),
            pi::EXTENDED_USER_DATA => self.extended_user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Refuse<'a> {
    const KNOWN: &'static [u8] =
        &[pi::CONNECTION_ID, pi::TRANSPORT_DISCONNECT, pi::REQUIREMENTS, pi::VERSION, pi::ENCLOSURE, pi::REASON];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::CONNECTION_ID => self.connection_id = Some(group(u)?),
            pi::TRANSPORT_DISCONNECT => self.transport_disconnect = Some(one(u, "1-octet Transport Disconnect")?),
            pi::REQUIREMENTS => self.requirements = Some(requirements(u)?),
            pi::VERSION => self.version = Some(one(u, "1-octet Version Number")?),
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::REASON => {
                let Some((&code, data)) = u.value.split_first() else {
                    return Err(Error::new(L, u.at, "Reason Code of at least 1 octet", Found::Length(0)));
                };
                self.reason = Some(RefuseReason { code, data });
            }
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Release<'a> {
    const KNOWN: &'static [u8] = &[pi::TRANSPORT_DISCONNECT, pi::ENCLOSURE, pi::USER_DATA];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::TRANSPORT_DISCONNECT => self.transport_disconnect = Some(one(u, "1-octet Transport Disconnect")?),
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Abort<'a> {
    const KNOWN: &'static [u8] = &[pi::TRANSPORT_DISCONNECT, pi::ENCLOSURE, pi::REFLECT, pi::USER_DATA];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::TRANSPORT_DISCONNECT => self.transport_disconnect = Some(one(u, "1-octet Transport Disconnect")?),
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::REFLECT => self.reflect = Some(u.value),
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for TokenTransfer<'a> {
    const KNOWN: &'static [u8] = &[pi::TOKEN_ITEM, pi::ENCLOSURE, pi::USER_DATA];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::TOKEN_ITEM => self.token_item = Some(Tokens(one(u, "1-octet Token Item")?)),
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Empty<'a> {
    const KNOWN: &'static [u8] = &[];
    fn take(&mut self, _u: &Unit<'a>) -> Result<()> {
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Data<'a> {
    const KNOWN: &'static [u8] = &[pi::ENCLOSURE];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        if u.code == pi::ENCLOSURE {
            self.enclosure = Some(one(u, ENCL)?);
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Sync<'a> {
    const KNOWN: &'static [u8] = &[pi::SYNC_TYPE, pi::ENCLOSURE, pi::SERIAL, pi::USER_DATA];
    const REQUIRED: &'static [u8] = &[pi::SERIAL];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::SYNC_TYPE => self.sync_type = Some(one(u, "1-octet Sync Type Item")?),
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::SERIAL => self.serial = serial(u)?,
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Resync<'a> {
    const KNOWN: &'static [u8] = &[pi::ENCLOSURE, pi::TOKEN_SETTING, pi::RESYNC_TYPE, pi::SERIAL, pi::USER_DATA];
    const REQUIRED: &'static [u8] = &[pi::SERIAL];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::TOKEN_SETTING => self.token_setting = Some(TokenSetting(one(u, "1-octet Token Setting Item")?)),
            pi::RESYNC_TYPE => self.resync_type = Some(one(u, "1-octet Resync Type")?),
            pi::SERIAL => self.serial = serial(u)?,
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for ActivityStart<'a> {
    const KNOWN: &'static [u8] = &[pi::ENCLOSURE, pi::ACTIVITY_ID, pi::USER_DATA];
    const REQUIRED: &'static [u8] = &[pi::ACTIVITY_ID];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::ACTIVITY_ID => self.activity_id = u.value,
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Linking<'a> {
    const KNOWN: &'static [u8] =
        &[pi::CALLED_REF, pi::CALLING_REF, pi::COMMON_REF, pi::ADDITIONAL_REF, pi::ACTIVITY_ID, pi::SERIAL];
    const REQUIRED: &'static [u8] = &[pi::ACTIVITY_ID, pi::SERIAL];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::CALLED_REF => self.called_ref = Some(u.value),
            pi::CALLING_REF => self.calling_ref = Some(u.value),
            pi::COMMON_REF => self.common_ref = Some(u.value),
            pi::ADDITIONAL_REF => self.additional_ref = Some(u.value),
            pi::ACTIVITY_ID => self.old_activity_id = u.value,
            pi::SERIAL => self.serial = serial(u)?,
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for ActivityResume<'a> {
    const KNOWN: &'static [u8] = &[pi::ENCLOSURE, pi::LINKING, pi::ACTIVITY_ID, pi::USER_DATA];
    const REQUIRED: &'static [u8] = &[pi::LINKING, pi::ACTIVITY_ID];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::LINKING => self.linking = group(u)?,
            pi::ACTIVITY_ID => self.activity_id = u.value,
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Reasoned<'a> {
    const KNOWN: &'static [u8] = &[pi::ENCLOSURE, pi::REFLECT, pi::REASON, pi::USER_DATA];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::ENCLOSURE => self.enclosure = Some(one(u, ENCL)?),
            pi::REFLECT => self.reflect = Some(u.value),
            pi::REASON => self.reason = Some(one(u, "1-octet Reason Code")?),
            pi::USER_DATA => self.user_data = Some(u.value),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for OverflowAccept<'a> {
    const KNOWN: &'static [u8] = &[pi::TSDU_MAX_SIZE, pi::VERSION];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        match u.code {
            pi::TSDU_MAX_SIZE => self.tsdu_max_size = Some(tsdu_max_size(u)?),
            pi::VERSION => self.version = Some(one(u, "1-octet Version Number")?),
            _ => {}
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

impl<'a> Fields<'a> for Prepare<'a> {
    const KNOWN: &'static [u8] = &[pi::PREPARE_TYPE];
    const REQUIRED: &'static [u8] = &[pi::PREPARE_TYPE];
    fn take(&mut self, u: &Unit<'a>) -> Result<()> {
        if u.code == pi::PREPARE_TYPE {
            self.prepare_type = one(u, "1-octet Prepare Type")?;
        }
        Ok(())
    }
    fn set_params(&mut self, p: Params<'a>) {
        self.params = p;
    }
}

/// The kind an SI denotes at this position, before looking at parameters
/// (`None` for SI 41, which needs the Sync Type Item).
fn kind_of(si: u8, previous: Option<SpduKind>, ctx: &Context) -> Option<Option<SpduKind>> {
    use SpduKind as K;
    let first = previous.is_none();
    Some(Some(match si {
        si::GT_DT => {
            if first {
                K::Gt
            } else {
                K::Dt
            }
        }
        si::AB_AI => {
            if first {
                K::Ab
            } else {
                K::Ai
            }
        }
        si::AA_AIA => {
            if first {
                K::Aa
            } else {
                K::Aia
            }
        }
        si::MAP_AE => return Some(None),
        si::MAA_AEA => match ctx.last_major {
            Some(K::Map) => K::Maa,
            Some(K::Ae) => K::Aea,
            _ if !ctx.activity_management() => K::Maa,
            _ => K::Aea,
        },
        si::PT => K::Pt,
        si::EX => K::Ex,
        si::PR => K::Pr,
        si::NF => K::Nf,
        si::FN => K::Fn,
        si::DN => K::Dn,
        si::RF => K::Rf,
        si::CN => K::Cn,
        si::AC => K::Ac,
        si::CDO => K::Cdo,
        si::OA => K::Oa,
        si::GTC => K::Gtc,
        si::GTA => K::Gta,
        si::AR => K::Ar,
        si::TD => K::Td,
        si::RA => K::Ra,
        si::AS => K::As,
        si::ED => K::Ed,
        si::ER => K::Er,
        si::MIP => K::Mip,
        si::MIA => K::Mia,
        si::RS => K::Rs,
        si::AD => K::Ad,
        si::ADA => K::Ada,
        si::CD => K::Cd,
        si::CDA => K::Cda,
        _ => return None,
    }))
}

fn build<'a>(kind: SpduKind, f: &Field<'a>, r: &mut Repairs) -> Result<Spdu<'a>> {
    use SpduKind as K;
    Ok(match kind {
        K::Cn => Spdu::Cn(parse_boxed(f, r)?),
        K::Ac => Spdu::Ac(parse_boxed(f, r)?),
        K::Rf => Spdu::Rf(parse_boxed(f, r)?),
        K::Fn => Spdu::Fn(parse_fields(f, r)?),
        K::Dn => Spdu::Dn(parse_fields(f, r)?),
        K::Nf => Spdu::Nf(parse_fields(f, r)?),
        K::Ab => Spdu::Ab(parse_fields(f, r)?),
        K::Aa => Spdu::Aa(parse_fields(f, r)?),
        K::Dt => Spdu::Dt(parse_fields(f, r)?),
        K::Gt => Spdu::Gt(parse_fields(f, r)?),
        K::Pt => Spdu::Pt(parse_fields(f, r)?),
        K::Gtc => Spdu::Gtc(parse_fields(f, r)?),
        K::Gta => Spdu::Gta(parse_fields(f, r)?),
        K::Mip => Spdu::Mip(parse_fields(f, r)?),
        K::Mia => Spdu::Mia(parse_fields(f, r)?),
        K::Map => Spdu::Map(parse_fields(f, r)?),
        K::Maa => Spdu::Maa(parse_fields(f, r)?),
        K::Rs => Spdu::Rs(parse_fields(f, r)?),
        K::Ra => Spdu::Ra(parse_fields(f, r)?),
        K::As => Spdu::As(parse_fields(f, r)?),
        K::Ar => Spdu::Ar(parse_boxed(f, r)?),
        K::Ai => Spdu::Ai(parse_fields(f, r)?),
        K::Aia => Spdu::Aia(parse_fields(f, r)?),
        K::Ad => Spdu::Ad(parse_fields(f, r)?),
        K::Ada => Spdu::Ada(parse_fields(f, r)?),
        K::Ae => Spdu::Ae(parse_fields(f, r)?),
        K::Aea => Spdu::Aea(parse_fields(f, r)?),
        K::Cd => Spdu::Cd(parse_fields(f, r)?),
        K::Cda => Spdu::Cda(parse_fields(f, r)?),
        K::Ed => Spdu::Ed(parse_fields(f, r)?),
        K::Er => Spdu::Er(parse_fields(f, r)?),
        K::Td => Spdu::Td(parse_fields(f, r)?),
        K::Cdo => Spdu::Cdo(parse_fields(f, r)?),
        K::Oa => Spdu::Oa(parse_fields(f, r)?),
        K::Pr => Spdu::Pr(parse_fields(f, r)?),
        K::Ex => Spdu::Ex(parse_fields(f, r)?),
    })
}

fn parse_one<'a>(
    input: &'a [u8],
    previous: Option<SpduKind>,
    ctx: &Context,
    repairs: &mut Repairs,
) -> Result<(Spdu<'a>, &'a [u8])> {
    let Some(&si) = input.first() else {
        return Err(Error::eof(L, 0, "SPDU identifier"));
    };
    let Some(kind) = kind_of(si, previous, ctx) else {
        return Err(Error::new(L, 0, "SPDU identifier", Found::Byte(si)));
    };
    let (li, hdr) = match input.get(1) {
        None => return Err(Error::eof(L, 1, "length indicator")),
        Some(&255) => match (input.get(2), input.get(3)) {
            (Some(&h), Some(&l)) => (usize::from(u16::from_be_bytes([h, l])), 4),
            _ => return Err(Error::eof(L, input.len(), "3-octet length indicator")),
        },
        Some(&l) => (usize::from(l), 2),
    };
    let end = hdr + li;
    let (bytes, mut truncated) = match input.get(hdr..end) {
        Some(b) => (b, false),
        None => (input.get(hdr..).unwrap_or(&[]), true),
    };
    if truncated && ctx.lenient {
        truncated = false;
        repairs.insert(Repairs::LI_CLAMPED);
    }
    let f = Field { bytes, base: hdr, truncated, lenient: ctx.lenient };
    let mut spdu = match kind {
        Some(k) => build(k, &f, repairs)?,
        None => {
            let s: Sync<'a> = parse_fields(&f, repairs)?;
            let not_ended = s.sync_type.is_some_and(|t| t & SYNC_ACTIVITY_NOT_ENDED != 0);
            if not_ended || !ctx.activity_management() {
                Spdu::Map(s)
            } else {
                Spdu::Ae(s)
            }
        }
    };
    let after = input.get(end..).unwrap_or(&[]);
    // DT, TD and EX take the rest of the TSDU as user information (set in
    // place: an SPDU is moved once less per parse).
    let rest = match &mut spdu {
        Spdu::Dt(d) | Spdu::Td(d) | Spdu::Ex(d) => {
            d.user_info = after;
            &[][..]
        }
        _ => after,
    };
    Ok((spdu, rest))
}

/// Parse one SPDU from the front of `input` as the first SPDU of a TSDU
/// (SI 1 = GT, 25 = AB, 26 = AA), strictly and without connection context;
/// returns it and what follows (nothing after DT, TD, EX).
pub fn parse(input: &[u8]) -> Result<(Spdu<'_>, &[u8])> {
    parse_at(input, None, &Context::STRICT)
}

/// Parse one SPDU from the front of `input`, which follows `previous` in
/// the same TSDU (`None`: it is the first). Repairs made in lenient mode
/// are not reported here; use [`parse_tsdu_with`] for that.
pub fn parse_at<'a>(input: &'a [u8], previous: Option<SpduKind>, ctx: &Context) -> Result<(Spdu<'a>, &'a [u8])> {
    parse_one(input, previous, ctx, &mut Repairs::default())
}

/// Parse a whole TSDU (all its concatenated SPDUs), strictly, without
/// connection context.
pub fn parse_tsdu(input: &[u8]) -> Result<Tsdu<'_>> {
    parse_tsdu_with(input, &Context::STRICT)
}

/// Parse a whole TSDU with what the caller knows about the connection.
pub fn parse_tsdu_with<'a>(input: &'a [u8], ctx: &Context) -> Result<Tsdu<'a>> {
    let mut tsdu = Tsdu::new();
    parse_tsdu_into(input, ctx, &mut tsdu)?;
    Ok(tsdu)
}

/// [`parse_tsdu_with`] into an empty `tsdu` the caller holds (the stack
/// decoder's, so that the TSDU is not moved once more).
pub(crate) fn parse_tsdu_into<'a>(input: &'a [u8], ctx: &Context, tsdu: &mut Tsdu<'a>) -> Result<()> {
    if input.len() > MAX_TSDU_LEN {
        return Err(Error::new(L, 0, "TSDU within the size limit", Found::Length(input.len())));
    }
    let mut repairs = Repairs::default();
    let mut rest = input;
    let mut previous: Option<SpduKind> = None;
    loop {
        let off = input.len() - rest.len();
        if tsdu.len() == MAX_CONCATENATED_SPDUS {
            return Err(Error::new(L, off, "at most 8 concatenated SPDUs", Found::Other("more SPDUs")));
        }
        let (spdu, r) = parse_one(rest, previous, ctx, &mut repairs).map_err(|e| e.shift(off))?;
        let kind = spdu.kind();
        if let Some(e) = concatenation_error(previous, kind, ctx, off, rest) {
            if ctx.lenient {
                repairs.insert(Repairs::CONCATENATION);
            } else {
                return Err(e);
            }
        }
        tsdu.push_unchecked(spdu);
        previous = Some(kind);
        rest = r;
        if rest.is_empty() {
            break;
        }
    }
    tsdu.repairs = repairs;
    Ok(())
}

fn concatenation_error(
    previous: Option<SpduKind>,
    kind: SpduKind,
    ctx: &Context,
    off: usize,
    rest: &[u8],
) -> Option<Error> {
    let cat = kind.category();
    let si = Found::Byte(kind.si());
    match previous.map(SpduKind::category) {
        None if cat == Category::Two => Some(Error::new(L, off, "category 0 or 1 SPDU at the start of a TSDU", si)),
        None => None,
        Some(Category::Zero) if cat == Category::Two || kind == SpduKind::Td => None,
        Some(Category::Zero) => Some(Error::new(L, off, "category 2 SPDU after a category 0 SPDU", si)),
        Some(Category::Two) if ctx.extended_concatenation && cat == Category::Two => None,
        Some(Category::Two) if ctx.extended_concatenation => Some(Error::new(L, off, "category 2 SPDU", si)),
        Some(Category::Two) => {
            Some(Error::new(L, off, "end of TSDU (no extended concatenation)", Found::Trailing(rest.len())))
        }
        Some(_) => Some(Error::new(L, off, "end of TSDU after a category 1 SPDU", Found::Trailing(rest.len()))),
    }
}

// ---------------------------------------------------------------------------
// Emission

trait Sink {
    fn unit(&mut self, code: u8, value: &[u8]);
    fn group(&mut self, code: u8, g: &dyn Units);
    /// Octets inside a group value that are not parameter units (the RF
    /// Reason Code value).
    fn raw(&mut self, b: &[u8]);
}

trait Units {
    fn units(&self, s: &mut dyn Sink);
}

const fn len_len(n: usize) -> usize {
    if n < 255 {
        1
    } else {
        3
    }
}

fn write_len(out: &mut Vec<u8>, n: usize) {
    if n < 255 {
        out.push(n as u8);
    } else {
        let n = n.min(MAX_PARAM_LEN) as u16;
        out.push(255);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

struct Counter(usize);
impl Sink for Counter {
    fn unit(&mut self, _code: u8, value: &[u8]) {
        let n = value.len().min(MAX_PARAM_LEN);
        self.0 = self.0.saturating_add(1 + len_len(n) + n);
    }
    fn group(&mut self, _code: u8, g: &dyn Units) {
        let n = count(g);
        self.0 = self.0.saturating_add(1 + len_len(n)).saturating_add(n);
    }
    fn raw(&mut self, b: &[u8]) {
        self.0 = self.0.saturating_add(b.len());
    }
}

fn count(g: &dyn Units) -> usize {
    let mut c = Counter(0);
    g.units(&mut c);
    c.0
}

struct Writer<'o>(&'o mut Vec<u8>);
impl Sink for Writer<'_> {
    fn unit(&mut self, code: u8, value: &[u8]) {
        let value = value.get(..MAX_PARAM_LEN).unwrap_or(value);
        self.0.push(code);
        write_len(self.0, value.len());
        self.0.extend_from_slice(value);
    }
    fn group(&mut self, code: u8, g: &dyn Units) {
        let n = count(g);
        self.0.push(code);
        write_len(self.0, n);
        g.units(self);
    }
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

fn put_u8(s: &mut dyn Sink, code: u8, v: Option<u8>) {
    if let Some(v) = v {
        s.unit(code, &[v]);
    }
}

fn put_bytes(s: &mut dyn Sink, code: u8, v: Option<&[u8]>) {
    if let Some(v) = v {
        s.unit(code, v);
    }
}

fn put_params(s: &mut dyn Sink, p: &Params<'_>) {
    for u in p.iter() {
        s.unit(u.code, u.value);
    }
}

fn put_tsdu_max(s: &mut dyn Sink, v: Option<TsduMaxSize>) {
    if let Some(t) = v {
        let [a, b] = t.initiator_to_responder.to_be_bytes();
        let [c, d] = t.responder_to_initiator.to_be_bytes();
        s.unit(pi::TSDU_MAX_SIZE, &[a, b, c, d]);
    }
}

/// Enclosure, unknown parameters, then user data: the common tail.
fn put_tail(s: &mut dyn Sink, enclosure: Option<u8>, params: &Params<'_>, user_data: Option<&[u8]>) {
    put_u8(s, pi::ENCLOSURE, enclosure);
    put_params(s, params);
    put_bytes(s, pi::USER_DATA, user_data);
}

impl Units for ConnectionId<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_bytes(s, pi::CALLED_REF, self.called_ref);
        put_bytes(s, pi::CALLING_REF, self.calling_ref);
        put_bytes(s, pi::COMMON_REF, self.common_ref);
        put_bytes(s, pi::ADDITIONAL_REF, self.additional_ref);
        put_params(s, &self.params);
    }
}

impl Units for ConnectAcceptItem<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_u8(s, pi::PROTOCOL_OPTIONS, self.protocol_options);
        put_tsdu_max(s, self.tsdu_max_size);
        put_u8(s, pi::VERSION, self.version);
        if let Some(n) = &self.initial_serial {
            s.unit(pi::INITIAL_SERIAL, n.as_bytes());
        }
        put_u8(s, pi::TOKEN_SETTING, self.token_setting.map(|t| t.0));
        put_bytes(s, pi::SECOND_INITIAL_SERIAL, self.second_initial_serial);
        put_bytes(s, pi::UPPER_LIMIT_SERIAL, self.upper_limit_serial);
        put_bytes(s, pi::LARGE_INITIAL_SERIAL, self.large_initial_serial);
        put_bytes(s, pi::LARGE_SECOND_INITIAL_SERIAL, self.large_second_initial_serial);
        put_params(s, &self.params);
    }
}

impl Units for Connect<'_> {
    fn units(&self, s: &mut dyn Sink) {
        if let Some(g) = &self.connection_id {
            s.group(pi::CONNECTION_ID, g);
        }
        if let Some(g) = &self.item {
            s.group(pi::CONNECT_ACCEPT_ITEM, g);
        }
        put_u8(s, pi::TOKEN_ITEM, self.token_item.map(|t| t.0));
        if let Some(r) = self.requirements {
            s.unit(pi::REQUIREMENTS, &r.0.to_be_bytes());
        }
        put_bytes(s, pi::CALLING_SSEL, self.calling_ssel);
        put_bytes(s, pi::CALLED_SSEL, self.called_ssel);
        put_u8(s, pi::DATA_OVERFLOW, self.data_overflow);
        put_tail(s, self.enclosure, &self.params, self.user_data);
        put_bytes(s, pi::EXTENDED_USER_DATA, self.extended_user_data);
    }
}

impl Units for Refuse<'_> {
    fn units(&self, s: &mut dyn Sink) {
        if let Some(g) = &self.connection_id {
            s.group(pi::CONNECTION_ID, g);
        }
        put_u8(s, pi::TRANSPORT_DISCONNECT, self.transport_disconnect);
        if let Some(r) = self.requirements {
            s.unit(pi::REQUIREMENTS, &r.0.to_be_bytes());
        }
        put_u8(s, pi::VERSION, self.version);
        put_u8(s, pi::ENCLOSURE, self.enclosure);
        put_params(s, &self.params);
        if let Some(r) = &self.reason {
            s.group(pi::REASON, r);
        }
    }
}

/// The RF reason value is `code data`; written through `group` so that no
/// buffer is needed to join them.
impl Units for RefuseReason<'_> {
    fn units(&self, s: &mut dyn Sink) {
        s.raw(&[self.code]);
        s.raw(self.data);
    }
}

impl Units for Release<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_u8(s, pi::TRANSPORT_DISCONNECT, self.transport_disconnect);
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for Abort<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_u8(s, pi::TRANSPORT_DISCONNECT, self.transport_disconnect);
        put_bytes(s, pi::REFLECT, self.reflect);
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for TokenTransfer<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_u8(s, pi::TOKEN_ITEM, self.token_item.map(|t| t.0));
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for Empty<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_params(s, &self.params);
    }
}

impl Units for Data<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_tail(s, self.enclosure, &self.params, None);
    }
}

impl Units for Sync<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_u8(s, pi::SYNC_TYPE, self.sync_type);
        s.unit(pi::SERIAL, self.serial.as_bytes());
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for Resync<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_u8(s, pi::TOKEN_SETTING, self.token_setting.map(|t| t.0));
        put_u8(s, pi::RESYNC_TYPE, self.resync_type);
        s.unit(pi::SERIAL, self.serial.as_bytes());
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for ActivityStart<'_> {
    fn units(&self, s: &mut dyn Sink) {
        s.unit(pi::ACTIVITY_ID, self.activity_id);
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for Linking<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_bytes(s, pi::CALLED_REF, self.called_ref);
        put_bytes(s, pi::CALLING_REF, self.calling_ref);
        put_bytes(s, pi::COMMON_REF, self.common_ref);
        put_bytes(s, pi::ADDITIONAL_REF, self.additional_ref);
        s.unit(pi::ACTIVITY_ID, self.old_activity_id);
        s.unit(pi::SERIAL, self.serial.as_bytes());
        put_params(s, &self.params);
    }
}

impl Units for ActivityResume<'_> {
    fn units(&self, s: &mut dyn Sink) {
        s.group(pi::LINKING, &self.linking);
        s.unit(pi::ACTIVITY_ID, self.activity_id);
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for Reasoned<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_bytes(s, pi::REFLECT, self.reflect);
        put_u8(s, pi::REASON, self.reason);
        put_tail(s, self.enclosure, &self.params, self.user_data);
    }
}

impl Units for OverflowAccept<'_> {
    fn units(&self, s: &mut dyn Sink) {
        put_tsdu_max(s, self.tsdu_max_size);
        put_u8(s, pi::VERSION, self.version);
        put_params(s, &self.params);
    }
}

impl Units for Prepare<'_> {
    fn units(&self, s: &mut dyn Sink) {
        s.unit(pi::PREPARE_TYPE, &[self.prepare_type]);
        put_params(s, &self.params);
    }
}

impl Units for Spdu<'_> {
    fn units(&self, s: &mut dyn Sink) {
        match self {
            Spdu::Cn(b) | Spdu::Ac(b) => b.units(s),
            Spdu::Rf(b) => b.units(s),
            Spdu::Fn(b) | Spdu::Dn(b) | Spdu::Nf(b) | Spdu::Cd(b) | Spdu::Cda(b) | Spdu::Cdo(b) => b.units(s),
            Spdu::Ab(b) => b.units(s),
            Spdu::Aa(b) | Spdu::Gtc(b) | Spdu::Gta(b) | Spdu::Aia(b) | Spdu::Ada(b) => b.units(s),
            Spdu::Dt(b) | Spdu::Td(b) | Spdu::Ex(b) => b.units(s),
            Spdu::Gt(b) | Spdu::Pt(b) => b.units(s),
            Spdu::Mip(b) | Spdu::Mia(b) | Spdu::Map(b) | Spdu::Maa(b) | Spdu::Ae(b) | Spdu::Aea(b) => b.units(s),
            Spdu::Rs(b) | Spdu::Ra(b) => b.units(s),
            Spdu::As(b) => b.units(s),
            Spdu::Ar(b) => b.units(s),
            Spdu::Ai(b) | Spdu::Ad(b) | Spdu::Ed(b) | Spdu::Er(b) => b.units(s),
            Spdu::Oa(b) => b.units(s),
            Spdu::Pr(b) => b.units(s),
        }
    }
}

fn user_info<'a>(spdu: &Spdu<'a>) -> &'a [u8] {
    match spdu {
        Spdu::Dt(d) | Spdu::Td(d) | Spdu::Ex(d) => d.user_info,
        _ => &[],
    }
}

/// Append the SPDU to `out` in canonical form (see the module docs).
pub fn emit(spdu: &Spdu<'_>, out: &mut Vec<u8>) {
    let li = count(spdu);
    out.reserve(1 + len_len(li) + li + user_info(spdu).len());
    out.push(spdu.si());
    write_len(out, li);
    spdu.units(&mut Writer(out));
    out.extend_from_slice(user_info(spdu));
}

/// Octets [`emit`] writes.
pub fn encoded_len(spdu: &Spdu<'_>) -> usize {
    let li = count(spdu);
    (1 + len_len(li)).saturating_add(li).saturating_add(user_info(spdu).len())
}

/// Append every SPDU of the TSDU to `out`.
pub fn emit_tsdu(tsdu: &Tsdu<'_>, out: &mut Vec<u8>) {
    for s in tsdu {
        emit(s, out);
    }
}

/// Octets [`emit_tsdu`] writes.
pub fn encoded_len_tsdu(tsdu: &Tsdu<'_>) -> usize {
    tsdu.iter().map(encoded_len).fold(0, usize::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `untyped_user_data` gives what the scan through `Params::iter` it
    /// replaced gave (first User Data, else first Extended User Data,
    /// skipping the typed codes), for every mix of units and typed codes.
    #[test]
    fn untyped_user_data_agrees_with_params_iter() {
        fn reference<'a>(p: &Params<'a>) -> Option<&'a [u8]> {
            let mut extended = None;
            for u in p {
                match u.code {
                    pi::USER_DATA => return Some(u.value),
                    pi::EXTENDED_USER_DATA if extended.is_none() => extended = Some(u.value),
                    _ => {}
                }
            }
            extended
        }
        let units: [&[u8]; 5] =
            [&[193, 1, 0xaa], &[194, 2, 0xbb, 0xcc], &[16, 1, 3], &[193, 0], &[194, 255, 0, 1, 0xdd]];
        let knowns: [&'static [u8]; 4] = [&[], &[pi::USER_DATA], &[pi::EXTENDED_USER_DATA, 16], &[193, 194]];
        let mut checked = 0;
        for mask in 0u32..(5 * 5 * 5 * 5) {
            let mut raw = Vec::new();
            let mut m = mask;
            for _ in 0..4 {
                if m % 5 < 4 || mask % 7 == 0 {
                    raw.extend_from_slice(units[(m % 5) as usize]);
                }
                m /= 5;
            }
            for cut in [raw.len(), raw.len().saturating_sub(1)] {
                for known in knowns {
                    let p = Params { raw: &raw[..cut], known };
                    assert_eq!(untyped_user_data(&p), reference(&p), "{:02x?} known {known:?}", &raw[..cut]);
                    checked += usize::from(reference(&p).is_some());
                }
            }
        }
        assert!(checked > 100);
    }
}
