//! X.411 P1, only as far as labelling transfers needs: the MTA bind
//! (RTORQ/RTOAC `open` user data, RTORJ `userDataRJ`) and the identifier,
//! content type and priority of an MTS-APDU (message, report, probe).
//! Everything else is kept opaque (raw octets).
//!
//! Bind values: in normal mode RTSE carries them in the RO-notation wrapper
//! (`[16]` argument, `[17]` result, `[18]` error: `b0 { a1 .. }`); in
//! X.410-1984 mode without it (`a1 ..`). The `wrapped` flag of
//! [`parse_bind_argument`] & co. says which.
//!
//! Passwords: [`Password`] keeps the octets (they are needed to re-emit a
//! bind, and simulators send them), but neither its `Debug` nor its JSON
//! shows them: JSON is `"password": "<6 octets>"`, so decoded output can be
//! shared. Call [`Password::value`] for the octets.
//!
//! Character strings (MTA names, O/R address parts, local identifiers) are
//! shown as text in JSON and `Display`; octets outside printable ASCII are
//! written `\xNN` (and `\` as `\\`). That rendering is for people; the
//! values keep the octets.

use crate::ber::{
    write_bits, write_int, write_prim, write_tlv, BitString, Class, Octets, Oid, Reader, Tag, Tlv, IA5_STRING, INTEGER,
    NULL, NUMERIC_STRING, OCTET_STRING, OID, PRINTABLE_STRING, SEQUENCE, SET,
};
use crate::error::{Error, Found, Layer, Result};
use crate::rtse::{explicit_inner, int_enum};
use core::fmt;

const L: Layer = Layer::P1;

/// RO-notation BIND argument wrapper `[16]` (normal mode).
pub const TAG_BIND_ARGUMENT: Tag = Tag::ctx_c(16);
/// RO-notation BIND result wrapper `[17]`.
pub const TAG_BIND_RESULT: Tag = Tag::ctx_c(17);
/// RO-notation BIND error wrapper `[18]`.
pub const TAG_BIND_ERROR: Tag = Tag::ctx_c(18);

/// `[APPLICATION 4]` MTSIdentifier.
pub const TAG_MTS_IDENTIFIER: Tag = Tag::app_c(4);
/// `[APPLICATION 6]` built-in content type.
pub const TAG_BUILT_IN_CONTENT_TYPE: Tag = Tag::app(6);
/// `[APPLICATION 7]` priority.
pub const TAG_PRIORITY: Tag = Tag::app(7);
/// Built-in content type of interpersonal messaging 1988 (P22).
pub const CONTENT_TYPE_P22: i64 = 22;

int_enum! {
    /// `MTABindError`.
    BindError {
        Busy = 0 => "busy",
        AuthenticationError = 2 => "authentication-error",
        UnacceptableDialogueMode = 3 => "unacceptable-dialogue-mode",
        UnacceptableSecurityContext = 4 => "unacceptable-security-context",
        InadequateAssociationConfidentiality = 5 => "inadequate-association-confidentiality",
    }
}

int_enum! {
    /// Envelope `priority` (`[APPLICATION 7] ENUMERATED`, DEFAULT normal).
    Priority {
        Normal = 0 => "normal",
        NonUrgent = 1 => "non-urgent",
        Urgent = 2 => "urgent",
    }
}

/// A P1 PDU as far as this crate reads it. JSON: `{"pdu": "MTABindArgument", ...}`,
/// `{"pdu": "Message", "id": "/C=GB/A= /P=ACME/;MSG-0001", ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum P1Pdu<'a> {
    BindArgument(Bind<'a>),
    BindResult(Bind<'a>),
    BindError(BindError),
    Message(Box<Transfer<'a>>),
    Report(Box<Transfer<'a>>),
    Probe(Box<Transfer<'a>>),
}

impl<'a> P1Pdu<'a> {
    /// `"MTABindArgument"`, `"MTABindResult"`, `"MTABindError"`, `"Message"`, `"Report"`, `"Probe"`.
    pub const fn name(&self) -> &'static str {
        match self {
            P1Pdu::BindArgument(_) => "MTABindArgument",
            P1Pdu::BindResult(_) => "MTABindResult",
            P1Pdu::BindError(_) => "MTABindError",
            P1Pdu::Message(_) => TransferKind::Message.pdu_name(),
            P1Pdu::Report(_) => TransferKind::Report.pdu_name(),
            P1Pdu::Probe(_) => TransferKind::Probe.pdu_name(),
        }
    }
    /// The PDU variant for a parsed transfer.
    pub fn from_transfer(t: Transfer<'a>) -> Self {
        match t.kind {
            TransferKind::Message => P1Pdu::Message(Box::new(t)),
            TransferKind::Report => P1Pdu::Report(Box::new(t)),
            TransferKind::Probe => P1Pdu::Probe(Box::new(t)),
        }
    }
}

impl serde::Serialize for P1Pdu<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(tag = "pdu")]
        enum Ser<'b, 'a> {
            #[serde(rename = "MTABindArgument")]
            BindArgument(&'b Bind<'a>),
            #[serde(rename = "MTABindResult")]
            BindResult(&'b Bind<'a>),
            #[serde(rename = "MTABindError")]
            BindError {
                error: BindError,
            },
            Message(&'b Transfer<'a>),
            Report(&'b Transfer<'a>),
            Probe(&'b Transfer<'a>),
        }
        match self {
            P1Pdu::BindArgument(b) => Ser::BindArgument(b),
            P1Pdu::BindResult(b) => Ser::BindResult(b),
            P1Pdu::BindError(e) => Ser::BindError { error: *e },
            P1Pdu::Message(t) => Ser::Message(t),
            P1Pdu::Report(t) => Ser::Report(t),
            P1Pdu::Probe(t) => Ser::Probe(t),
        }
        .serialize(s)
    }
}

// ---------------------------------------------------------------------------
// Text rendering of character strings.

fn write_escaped(f: &mut impl fmt::Write, b: &[u8]) -> fmt::Result {
    // Runs of printable octets are written whole (identifiers are mostly
    // one run): a write per character cost more than the P1 parse.
    let plain = |c: u8| c != b'\\' && (0x20..=0x7e).contains(&c);
    let mut rest = b;
    while !rest.is_empty() {
        let run = rest.iter().position(|&c| !plain(c)).unwrap_or(rest.len());
        if run > 0 {
            // Printable ASCII is UTF-8.
            f.write_str(core::str::from_utf8(&rest[..run]).unwrap_or_default())?;
        }
        let Some((&c, tail)) = rest[run..].split_first() else { break };
        if c == b'\\' {
            f.write_str("\\\\")?;
        } else {
            // By table, not `write!`: a formatted escape goes through the
            // formatting machinery's `dyn Write` even into a `String`.
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let e = [b'\\', b'x', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]];
            f.write_str(core::str::from_utf8(&e).unwrap_or_default())?;
        }
        rest = tail;
    }
    Ok(())
}

fn escaped(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    let _ = write_escaped(&mut s, b);
    s
}

fn ser_text<S: serde::Serializer>(b: &Octets<'_>, s: S) -> core::result::Result<S::Ok, S::Error> {
    s.serialize_str(&escaped(b))
}

// ---------------------------------------------------------------------------
// Bind.

/// `MTABindArgument` / `MTABindResult` (same shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind<'a> {
    /// `NULL`.
    Unauthenticated,
    /// `[1] SET { name [0], credentials [1], security-context [2] OPTIONAL, ... }`.
    Authenticated(AuthenticatedBind<'a>),
}

/// The authenticated alternative of a bind argument or result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthenticatedBind<'a> {
    /// `initiator-name` / `responder-name` (MTAName, IA5String).
    #[serde(serialize_with = "ser_text")]
    pub name: Octets<'a>,
    pub credentials: Credentials<'a>,
    /// `security-context [2]`: the raw TLV, not decoded.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::rtse::ser_opt_hex")]
    pub security_context: Option<&'a [u8]>,
    /// Members after the extension marker, raw, in the order received
    /// (written after the known ones).
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "ser_raw_list")]
    pub extensions: Vec<&'a [u8]>,
}

fn ser_raw_list<S: serde::Serializer>(v: &[&[u8]], s: S) -> core::result::Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|b| crate::hex::encode(b)))
}

impl serde::Serialize for Bind<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Bind::Unauthenticated => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("authenticated", &false)?;
                m.end()
            }
            Bind::Authenticated(a) => {
                #[derive(serde::Serialize)]
                struct Ser<'b, 'a> {
                    authenticated: bool,
                    #[serde(flatten)]
                    a: &'b AuthenticatedBind<'a>,
                }
                Ser { authenticated: true, a }.serialize(s)
            }
        }
    }
}

/// `Credentials ::= CHOICE { simple Password, strong [0] StrongCredentials }`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credentials<'a> {
    Simple(Password<'a>),
    /// The raw `[0]` TLV (certificates and a signed token: not secret,
    /// shown as hex).
    #[serde(serialize_with = "crate::hex::ser")]
    Strong(&'a [u8]),
}

/// Which string type a simple password was sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PasswordForm {
    #[serde(rename = "IA5String")]
    Ia5String,
    #[serde(rename = "OCTET STRING")]
    OctetString,
}

/// A simple password. The octets are kept but never shown: `Debug` and JSON
/// give only their number (`"<6 octets>"`).
#[derive(Clone, PartialEq, Eq)]
pub struct Password<'a> {
    pub form: PasswordForm,
    value: Octets<'a>,
}

impl<'a> Password<'a> {
    pub fn new(form: PasswordForm, value: Octets<'a>) -> Self {
        Password { form, value }
    }
    /// The password octets (secret: do not log).
    pub fn value(&self) -> &Octets<'a> {
        &self.value
    }
    fn redacted(&self) -> String {
        format!("<{} octets>", self.value.len())
    }
}

impl fmt::Debug for Password<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Password").field("form", &self.form).field("value", &self.redacted()).finish()
    }
}

impl serde::Serialize for Password<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Password", 2)?;
        st.serialize_field("form", &self.form)?;
        st.serialize_field("password", &self.redacted())?;
        st.end()
    }
}

fn unwrap_ro<'a>(raw: &'a [u8], wrapped: bool, wrapper: Tag, what: &'static str) -> Result<Tlv<'a>> {
    let mut r = Reader::new(L, raw);
    let at = r.offset();
    let t = r.read(what)?;
    r.finish(what)?;
    if !wrapped {
        return Ok(t);
    }
    if t.tag != wrapper {
        return Err(Error::new(L, at, what, Found::Tag(t.tag)));
    }
    explicit_inner(&t, L, what)
}

/// `MTABindArgument` from the raw TLV of RTORQ/PConnect `open`; `wrapped`:
/// inside the RO-notation `[16]` (normal mode). The whole of `raw` must be
/// that one value.
pub fn parse_bind_argument(raw: &[u8], wrapped: bool) -> Result<Bind<'_>> {
    let t = unwrap_ro(raw, wrapped, TAG_BIND_ARGUMENT, "MTABindArgument (in b0 when wrapped)")?;
    parse_bind(&t)
}

/// `MTABindResult` from the raw TLV of RTOAC/PAccept `open`; `wrapped`:
/// inside `[17]`.
pub fn parse_bind_result(raw: &[u8], wrapped: bool) -> Result<Bind<'_>> {
    let t = unwrap_ro(raw, wrapped, TAG_BIND_RESULT, "MTABindResult (in b1 when wrapped)")?;
    parse_bind(&t)
}

/// `MTABindError` from the raw TLV of RTORJ `userDataRJ`; `wrapped`:
/// inside `[18]`.
pub fn parse_bind_error(raw: &[u8], wrapped: bool) -> Result<BindError> {
    const WHAT: &str = "MTABindError INTEGER (in b2 when wrapped)";
    let t = unwrap_ro(raw, wrapped, TAG_BIND_ERROR, WHAT)?;
    if t.tag != INTEGER {
        return Err(Error::new(L, t.offset, WHAT, Found::Tag(t.tag)));
    }
    Ok(BindError::from_i64(t.int(L, WHAT)?))
}

/// A bind argument or result value (unwrapped).
fn parse_bind<'a>(t: &Tlv<'a>) -> Result<Bind<'a>> {
    if t.tag == NULL {
        t.null(L, "unauthenticated NULL")?;
        return Ok(Bind::Unauthenticated);
    }
    if t.tag != Tag::ctx_c(1) {
        return Err(Error::new(L, t.offset, "bind value: 05 unauthenticated or a1 authenticated", Found::Tag(t.tag)));
    }
    const WHAT: &str = "bind member [0] name, [1] credentials or [2] security-context, each once";
    let (mut name, mut cred, mut sc) = (None, None, None);
    let mut extensions = Vec::new();
    let mut r = t.reader(L);
    while !r.is_empty() {
        let m = r.read(WHAT)?;
        let slot = match (m.tag.class, m.tag.number) {
            (Class::Context, 0) => name.is_some(),
            (Class::Context, 1) => cred.is_some(),
            (Class::Context, 2) => sc.is_some(),
            _ => {
                if extensions.len() >= crate::limits::MAX_LIST_ITEMS {
                    return Err(Error::new(L, m.offset, WHAT, Found::Other("too many unknown members")));
                }
                extensions.push(m.raw);
                continue;
            }
        };
        if slot {
            return Err(Error::new(L, m.offset, WHAT, Found::Other("a repeated member")));
        }
        match m.tag.number {
            0 => name = Some(m.octets(L, "MTAName [0] IA5String")?),
            1 => cred = Some(parse_credentials(&m)?),
            _ => {
                if !m.tag.constructed {
                    return Err(Error::new(L, m.offset, "security-context [2] SET", Found::Tag(m.tag)));
                }
                sc = Some(m.raw)
            }
        }
    }
    let miss = |w| Error::new(L, t.offset, w, Found::Other("a SET without it"));
    Ok(Bind::Authenticated(AuthenticatedBind {
        name: name.ok_or_else(|| miss("MTA name [0] in the bind"))?,
        credentials: cred.ok_or_else(|| miss("credentials [1] in the bind"))?,
        security_context: sc,
        extensions,
    }))
}

fn parse_credentials<'a>(wrapper: &Tlv<'a>) -> Result<Credentials<'a>> {
    const WHAT: &str = "credentials: 16 IA5String or 04 OCTET STRING password, or a0 strong";
    let c = explicit_inner(wrapper, L, WHAT)?;
    if c.tag.same_type(IA5_STRING) {
        Ok(Credentials::Simple(Password::new(PasswordForm::Ia5String, c.octets(L, WHAT)?)))
    } else if c.tag.same_type(OCTET_STRING) {
        Ok(Credentials::Simple(Password::new(PasswordForm::OctetString, c.octets(L, WHAT)?)))
    } else if c.tag == Tag::ctx_c(0) {
        Ok(Credentials::Strong(c.raw))
    } else {
        Err(Error::new(L, c.offset, WHAT, Found::Tag(c.tag)))
    }
}

/// Append a bind argument, in `[16]` if `wrapped`.
pub fn emit_bind_argument(b: &Bind<'_>, wrapped: bool, out: &mut Vec<u8>) {
    wrap(wrapped, TAG_BIND_ARGUMENT, out, |o| emit_bind(b, o));
}

/// Append a bind result, in `[17]` if `wrapped`.
pub fn emit_bind_result(b: &Bind<'_>, wrapped: bool, out: &mut Vec<u8>) {
    wrap(wrapped, TAG_BIND_RESULT, out, |o| emit_bind(b, o));
}

/// Append a bind error, in `[18]` if `wrapped`.
pub fn emit_bind_error(e: BindError, wrapped: bool, out: &mut Vec<u8>) {
    wrap(wrapped, TAG_BIND_ERROR, out, |o| write_int(o, INTEGER, e.to_i64()));
}

/// Append `pdu`: binds in their RO-notation wrapper if `wrapped`; a
/// transfer as the octets it was parsed from ([`Transfer::raw`]).
pub fn emit(pdu: &P1Pdu<'_>, wrapped: bool, out: &mut Vec<u8>) {
    match pdu {
        P1Pdu::BindArgument(b) => emit_bind_argument(b, wrapped, out),
        P1Pdu::BindResult(b) => emit_bind_result(b, wrapped, out),
        P1Pdu::BindError(e) => emit_bind_error(*e, wrapped, out),
        P1Pdu::Message(t) | P1Pdu::Report(t) | P1Pdu::Probe(t) => out.extend_from_slice(t.raw),
    }
}

fn wrap(wrapped: bool, tag: Tag, out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    if wrapped {
        write_tlv(out, tag, f);
    } else {
        f(out);
    }
}

fn emit_bind(b: &Bind<'_>, out: &mut Vec<u8>) {
    match b {
        Bind::Unauthenticated => write_prim(out, NULL, &[]),
        Bind::Authenticated(a) => write_tlv(out, Tag::ctx_c(1), |o| {
            write_prim(o, Tag::ctx(0), &a.name);
            write_tlv(o, Tag::ctx_c(1), |o| match &a.credentials {
                Credentials::Simple(p) => {
                    let tag = match p.form {
                        PasswordForm::Ia5String => IA5_STRING,
                        PasswordForm::OctetString => OCTET_STRING,
                    };
                    write_prim(o, tag, p.value());
                }
                Credentials::Strong(raw) => o.extend_from_slice(raw),
            });
            if let Some(sc) = a.security_context {
                o.extend_from_slice(sc);
            }
            for e in &a.extensions {
                o.extend_from_slice(e);
            }
        }),
    }
}

// ---------------------------------------------------------------------------
// Transfers.

/// Which MTS-APDU alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferKind {
    /// `[0]` Message.
    Message,
    /// `[1]` Report.
    Report,
    /// `[2]` Probe.
    Probe,
}

impl TransferKind {
    /// The name of the [`P1Pdu`] variant of this kind (`"Message"`,
    /// `"Report"`, `"Probe"`).
    pub const fn pdu_name(self) -> &'static str {
        match self {
            TransferKind::Message => "Message",
            TransferKind::Report => "Report",
            TransferKind::Probe => "Probe",
        }
    }

    pub const fn tag(self) -> Tag {
        Tag::ctx_c(self as u32)
    }
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferKind::Message => "message",
            TransferKind::Report => "report",
            TransferKind::Probe => "probe",
        }
    }
}

/// `MTSIdentifier`: global domain identifier and local identifier. Display:
/// `/C=GB/A= /P=ACME/;MSG-0001` (no `P=` part without a PRMD). The string
/// type each part was sent as (Numeric/Printable) is not kept: two
/// encodings of the same identifier compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MtsIdentifier<'a> {
    pub country: Octets<'a>,
    pub admd: Octets<'a>,
    pub prmd: Option<Octets<'a>>,
    pub local_id: Octets<'a>,
}

impl<'a> MtsIdentifier<'a> {
    /// From text parts.
    pub fn new(country: &'a str, admd: &'a str, prmd: Option<&'a str>, local_id: &'a str) -> Self {
        MtsIdentifier {
            country: Octets::borrowed(country.as_bytes()),
            admd: Octets::borrowed(admd.as_bytes()),
            prmd: prmd.map(|p| Octets::borrowed(p.as_bytes())),
            local_id: Octets::borrowed(local_id.as_bytes()),
        }
    }
    pub fn into_owned(self) -> MtsIdentifier<'static> {
        MtsIdentifier {
            country: self.country.into_owned(),
            admd: self.admd.into_owned(),
            prmd: self.prmd.map(Octets::into_owned),
            local_id: self.local_id.into_owned(),
        }
    }
}

impl MtsIdentifier<'_> {
    /// The `Display` text, in a string sized for it up front (growing it
    /// piece by piece reallocated several times per transfer).
    ///
    /// Written through [`MtsIdentifier::write_to`] into the `String`
    /// itself, not through `Display` (each piece then went through the
    /// formatting machinery's `dyn Write`: some 1,300 instructions an
    /// identifier, one per transfer of a timeline).
    pub fn render(&self) -> String {
        let parts = self.country.len() + self.admd.len() + self.prmd.as_ref().map_or(0, |p| p.len());
        let mut s = String::with_capacity(parts + self.local_id.len() + 12);
        // Writing to a String cannot fail.
        let _ = self.write_to(&mut s);
        s
    }

    /// The `Display` text, written to `f` (monomorphised: into a `String`,
    /// each piece is a `push_str`).
    fn write_to(&self, f: &mut impl fmt::Write) -> fmt::Result {
        f.write_str("/C=")?;
        write_escaped(f, &self.country)?;
        f.write_str("/A=")?;
        write_escaped(f, &self.admd)?;
        if let Some(p) = &self.prmd {
            f.write_str("/P=")?;
            write_escaped(f, p)?;
        }
        f.write_str("/;")?;
        write_escaped(f, &self.local_id)
    }
}

impl fmt::Display for MtsIdentifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl serde::Serialize for MtsIdentifier<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `ContentType ::= CHOICE { built-in [APPLICATION 6] INTEGER, extended OBJECT IDENTIFIER }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType<'a> {
    /// 2 = P2 (1984), 22 = P22 (1988).
    BuiltIn(i64),
    Extended(Oid<'a>),
}

/// The label of an MTS-APDU; the rest of it stays in `raw`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transfer<'a> {
    pub kind: TransferKind,
    /// message-, report- or probe-identifier.
    #[serde(rename = "id")]
    pub mts_identifier: MtsIdentifier<'a>,
    /// Envelope content type (messages and probes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType<'a>>,
    /// Envelope priority when sent (messages; DEFAULT normal, see [`Transfer::priority`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// The whole MTS-APDU TLV (JSON: its length).
    #[serde(rename = "len", serialize_with = "crate::hex::ser_len")]
    pub raw: &'a [u8],
}

impl Transfer<'_> {
    /// Effective priority (normal when absent).
    pub fn priority(&self) -> Priority {
        self.priority.unwrap_or(Priority::Normal)
    }
    /// The timeline label: `message /C=GB/A= /P=ACME/;MSG-0001`.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind.as_str(), self.mts_identifier)
    }
}

/// Parse the MTS-APDU at the front of `input` (a reassembled transfer:
/// normal mode, the single-ASN1-type of the EXTERNAL; X.410 mode, the
/// concatenated DT octets): its kind, the first `64` MTSIdentifier member of
/// the envelope SET, and the content type and priority if present. A
/// repeated identifier, content type or priority member is an error at its
/// offset; other envelope members are skipped. Returns what follows.
pub fn parse_mts_apdu(input: &[u8]) -> Result<(Transfer<'_>, &[u8])> {
    let mut r = Reader::new(L, input);
    let t = r.read("MTS-APDU a0 message, a1 report or a2 probe")?;
    let kind = match (t.tag.class, t.tag.constructed, t.tag.number) {
        (Class::Context, true, 0) => TransferKind::Message,
        (Class::Context, true, 1) => TransferKind::Report,
        (Class::Context, true, 2) => TransferKind::Probe,
        _ => return Err(Error::new(L, t.offset, "MTS-APDU a0 message, a1 report or a2 probe", Found::Tag(t.tag))),
    };
    let envelope = if kind == TransferKind::Probe {
        t
    } else {
        let mut inner = t.reader(L);
        inner.expect(SET, "envelope SET (31)")?
    };
    const WHAT: &str = "envelope member (64, 46, 06 and 47 at most once)";
    let (mut id, mut ct, mut prio) = (None, None, None);
    let mut er = envelope.reader(L);
    while !er.is_empty() {
        let m = er.read(WHAT)?;
        let dup = if m.tag == TAG_MTS_IDENTIFIER {
            id.is_some()
        } else if m.tag == TAG_BUILT_IN_CONTENT_TYPE || m.tag == OID {
            ct.is_some()
        } else if m.tag == TAG_PRIORITY {
            prio.is_some()
        } else {
            continue;
        };
        if dup {
            return Err(Error::new(L, m.offset, WHAT, Found::Other("a repeated member")));
        }
        if m.tag == TAG_MTS_IDENTIFIER {
            id = Some(parse_mts_identifier(&m)?);
        } else if m.tag == TAG_BUILT_IN_CONTENT_TYPE {
            ct = Some(ContentType::BuiltIn(m.int(L, "built-in content type INTEGER")?));
        } else if m.tag == OID {
            ct = Some(ContentType::Extended(m.oid(L, "extended content type OBJECT IDENTIFIER")?));
        } else {
            prio = Some(Priority::from_i64(m.int(L, "priority ENUMERATED")?));
        }
    }
    let mts_identifier = id.ok_or_else(|| {
        Error::new(L, envelope.offset, "MTSIdentifier (64) in the envelope", Found::Other("a SET without it"))
    })?;
    Ok((Transfer { kind, mts_identifier, content_type: ct, priority: prio, raw: t.raw }, r.rest()))
}

/// [`parse_mts_apdu`] as a [`P1Pdu`].
pub fn parse_transfer(input: &[u8]) -> Result<(P1Pdu<'_>, &[u8])> {
    parse_mts_apdu(input).map(|(t, rest)| (P1Pdu::from_transfer(t), rest))
}

fn domain_string<'a>(t: &Tlv<'a>, what: &'static str) -> Result<Octets<'a>> {
    if t.tag.same_type(PRINTABLE_STRING) || t.tag.same_type(NUMERIC_STRING) {
        t.octets(L, what)
    } else {
        Err(Error::new(L, t.offset, what, Found::Tag(t.tag)))
    }
}

/// `MTSIdentifier` from its `64` TLV.
pub fn parse_mts_identifier<'a>(t: &Tlv<'a>) -> Result<MtsIdentifier<'a>> {
    let mut r = t.reader(L);
    let gdi = r.expect(Tag::app_c(3), "global-domain-identifier (63)")?;
    const WHAT_LOCAL: &str = "local-identifier IA5String (16)";
    let at = r.offset();
    let local = r.read(WHAT_LOCAL)?;
    if !local.tag.same_type(IA5_STRING) {
        return Err(Error::new(L, at, WHAT_LOCAL, Found::Tag(local.tag)));
    }
    let local_id = local.octets(L, WHAT_LOCAL)?;
    r.finish("end of MTSIdentifier")?;
    let (country, admd, prmd) = parse_gdi(&gdi)?;
    Ok(MtsIdentifier { country, admd, prmd, local_id })
}

type Gdi<'a> = (Octets<'a>, Octets<'a>, Option<Octets<'a>>);

fn parse_gdi<'a>(gdi: &Tlv<'a>) -> Result<Gdi<'a>> {
    let mut r = gdi.reader(L);
    const WHAT_C: &str = "country-name NumericString or PrintableString";
    const WHAT_A: &str = "administration-domain-name NumericString or PrintableString";
    const WHAT_P: &str = "private-domain-identifier NumericString or PrintableString";
    let c = r.expect(Tag::app_c(1), "country-name (61)")?;
    let country = domain_string(&explicit_inner(&c, L, WHAT_C)?, WHAT_C)?;
    let a = r.expect(Tag::app_c(2), "administration-domain-name (62)")?;
    let admd = domain_string(&explicit_inner(&a, L, WHAT_A)?, WHAT_A)?;
    let prmd = if r.is_empty() { None } else { Some(domain_string(&r.read(WHAT_P)?, WHAT_P)?) };
    r.finish("end of GlobalDomainIdentifier")?;
    Ok((country, admd, prmd))
}

// ---------------------------------------------------------------------------
// Building transfers (for simulators): minimal but valid MTS-APDUs.

/// An O/R name with the standard attributes simulators need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrName<'a> {
    pub country: Octets<'a>,
    pub admd: Octets<'a>,
    pub prmd: Option<Octets<'a>>,
    pub organization: Option<Octets<'a>>,
    pub surname: Option<Octets<'a>>,
}

impl<'a> OrName<'a> {
    /// A person `S=surname` in the domain of `id`, with `O=` its PRMD.
    pub fn person_in(id: &MtsIdentifier<'a>, surname: &'a str) -> Self {
        OrName {
            country: id.country.clone(),
            admd: id.admd.clone(),
            prmd: id.prmd.clone(),
            organization: id.prmd.clone(),
            surname: Some(Octets::borrowed(surname.as_bytes())),
        }
    }
}

/// What [`emit_message`] and [`emit_probe`] put in the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSpec<'a> {
    pub id: MtsIdentifier<'a>,
    pub originator: OrName<'a>,
    /// At least one for a valid envelope.
    pub recipients: Vec<OrName<'a>>,
    /// Built-in content type.
    pub content_type: i64,
    /// Written only when `Some` (DEFAULT normal).
    pub priority: Option<Priority>,
    /// The trace element's arrival time (UTCTime text); the trace's domain
    /// is the identifier's.
    pub arrival_time: &'a str,
}

impl<'a> TransferSpec<'a> {
    /// Defaults as in example 3: originator `S=Alice`, one recipient
    /// `S=Bob`, both in the identifier's domain with `O=` the PRMD; content
    /// type P22; arrival `250101120000Z`; no priority.
    pub fn new(id: MtsIdentifier<'a>) -> Self {
        TransferSpec {
            originator: OrName::person_in(&id, "Alice"),
            recipients: vec![OrName::person_in(&id, "Bob")],
            id,
            content_type: CONTENT_TYPE_P22,
            priority: None,
            arrival_time: "250101120000Z",
        }
    }
}

/// A message MTS-APDU with identifier `id` and `content`, envelope as in
/// example 3 (see [`TransferSpec::new`]); [`parse_mts_apdu`] reads `id` back.
pub fn build_message(id: &MtsIdentifier<'_>, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    emit_message(&TransferSpec::new(id.clone()), content, &mut out);
    out
}

/// A probe MTS-APDU with identifier `id` (defaults of [`TransferSpec::new`]).
pub fn build_probe(id: &MtsIdentifier<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    emit_probe(&TransferSpec::new(id.clone()), &mut out);
    out
}

fn string_tag(s: &[u8]) -> Tag {
    if !s.is_empty() && s.iter().all(u8::is_ascii_digit) {
        NUMERIC_STRING
    } else {
        PRINTABLE_STRING
    }
}

fn emit_gdi(id: &MtsIdentifier<'_>, out: &mut Vec<u8>) {
    write_tlv(out, Tag::app_c(3), |o| {
        write_tlv(o, Tag::app_c(1), |o| write_prim(o, string_tag(&id.country), &id.country));
        write_tlv(o, Tag::app_c(2), |o| write_prim(o, string_tag(&id.admd), &id.admd));
        if let Some(p) = &id.prmd {
            write_prim(o, string_tag(p), p);
        }
    });
}

/// Append an `MTSIdentifier` (`64 ..`).
pub fn emit_mts_identifier(id: &MtsIdentifier<'_>, out: &mut Vec<u8>) {
    write_tlv(out, TAG_MTS_IDENTIFIER, |o| {
        emit_gdi(id, o);
        write_prim(o, IA5_STRING, &id.local_id);
    });
}

/// Append an `ORName` (`60 ..`) with the standard attributes of `n`.
pub fn emit_or_name(n: &OrName<'_>, out: &mut Vec<u8>) {
    write_tlv(out, Tag::app_c(0), |o| {
        write_tlv(o, SEQUENCE, |o| {
            let (c, a) = (&n.country, &n.admd);
            write_tlv(o, Tag::app_c(1), |o| write_prim(o, string_tag(c), c));
            write_tlv(o, Tag::app_c(2), |o| write_prim(o, string_tag(a), a));
            if let Some(p) = &n.prmd {
                write_tlv(o, Tag::ctx_c(2), |o| write_prim(o, string_tag(p), p));
            }
            if let Some(org) = &n.organization {
                write_prim(o, Tag::ctx(3), org);
            }
            if let Some(s) = &n.surname {
                write_tlv(o, Tag::ctx_c(5), |o| write_prim(o, Tag::ctx(0), s));
            }
        })
    });
}

fn emit_envelope_common(spec: &TransferSpec<'_>, with_priority: bool, out: &mut Vec<u8>) {
    emit_mts_identifier(&spec.id, out);
    emit_or_name(&spec.originator, out);
    write_int(out, TAG_BUILT_IN_CONTENT_TYPE, spec.content_type);
    if let (true, Some(p)) = (with_priority, spec.priority) {
        write_int(out, TAG_PRIORITY, p.to_i64());
    }
    // trace-information: one element, this domain, relayed.
    write_tlv(out, Tag::app_c(9), |o| {
        write_tlv(o, SEQUENCE, |o| {
            emit_gdi(&spec.id, o);
            write_tlv(o, SET, |o| {
                write_prim(o, Tag::ctx(0), spec.arrival_time.as_bytes());
                write_int(o, Tag::ctx(2), 0);
            });
        })
    });
    // per-recipient-fields.
    write_tlv(out, Tag::ctx_c(2), |o| {
        for (i, rcpt) in spec.recipients.iter().enumerate() {
            write_tlv(o, SET, |o| {
                emit_or_name(rcpt, o);
                write_int(o, Tag::ctx(0), i64::try_from(i).unwrap_or(i64::MAX - 1).saturating_add(1));
                // per-recipient-indicators: responsibility.
                write_bits(o, Tag::ctx(1), &BitString { unused: 0, data: Octets::borrowed(&[0x80]) });
            });
        }
    });
}

/// Append a message MTS-APDU: `a0 { 31 {envelope}, 04 content }`.
pub fn emit_message(spec: &TransferSpec<'_>, content: &[u8], out: &mut Vec<u8>) {
    write_tlv(out, TransferKind::Message.tag(), |o| {
        write_tlv(o, SET, |o| emit_envelope_common(spec, true, o));
        write_prim(o, OCTET_STRING, content);
    });
}

/// Append a probe MTS-APDU: `a2 {envelope members}` (no priority, no content).
pub fn emit_probe(spec: &TransferSpec<'_>, out: &mut Vec<u8>) {
    write_tlv(out, TransferKind::Probe.tag(), |o| emit_envelope_common(spec, false, o));
}

#[cfg(test)]
mod escape_tests {
    use super::escaped;
    use core::fmt::Write as _;

    /// The octet-by-octet rendering `write_escaped` replaced.
    fn reference(b: &[u8]) -> String {
        let mut s = String::new();
        for &c in b {
            match c {
                b'\\' => s.push_str("\\\\"),
                0x20..=0x7e => s.push(c as char),
                _ => {
                    let _ = write!(s, "\\x{c:02x}");
                }
            }
        }
        s
    }

    #[test]
    fn render_is_display_and_pdu_name_is_the_variant_name() {
        let m = super::MtsIdentifier::new("GB", " ", Some("ACME\\x"), "MSG-0001");
        assert_eq!(m.render(), m.to_string());
        let m = super::MtsIdentifier::new("G\u{1}", "é", Some("a\\b"), "id\u{7f}");
        assert_eq!(m.render(), "/C=G\\x01/A=\\xc3\\xa9/P=a\\\\b/;id\\x7f");
        assert_eq!(m.render(), m.to_string());
        // Every octet value, alone, between printable runs, and in runs.
        for b in 0..=255u8 {
            let mixed = [b'x', b, b'y', b, b];
            let m = super::MtsIdentifier {
                country: super::Octets::borrowed(&mixed[1..2]),
                admd: super::Octets::borrowed(&mixed),
                prmd: (b % 2 == 0).then(|| super::Octets::borrowed(&mixed[2..])),
                local_id: super::Octets::borrowed(&mixed[..4]),
            };
            assert_eq!(m.render(), m.to_string(), "octet {b:#04x}");
        }
        let m = super::MtsIdentifier::new("", "", None, "");
        assert_eq!(m.render(), m.to_string());
        use super::TransferKind::{Message, Probe, Report};
        for k in [Message, Report, Probe] {
            let t =
                super::Transfer { kind: k, mts_identifier: m.clone(), content_type: None, priority: None, raw: &[] };
            assert_eq!(k.pdu_name(), super::P1Pdu::from_transfer(t).name());
        }
    }

    #[test]
    fn runs_render_as_octet_by_octet() {
        let mut cases: Vec<Vec<u8>> =
            vec![vec![], b"MSG-0001".to_vec(), b"\\".to_vec(), b"a\\b\x00c\x7f\xff ~".to_vec(), (0..=255).collect()];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in 0..500 {
            let mut v = Vec::new();
            for _ in 0..n % 40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly printable, some backslashes and control octets.
                v.push(match x % 8 {
                    0 => b'\\',
                    1 => (x >> 8) as u8,
                    _ => 0x20 + (x >> 8) as u8 % 0x5f,
                });
            }
            cases.push(v);
        }
        for c in cases {
            assert_eq!(escaped(&c), reference(&c), "{c:02x?}");
        }
    }
}
