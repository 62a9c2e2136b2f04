//! Synthetic associations: the PDUs of an RTSE association built with the
//! codec's `emit` (never hand-written bytes), and captures of them written
//! with [`capture::write`](rtse_codec::capture::write).
//!
//! Two levels:
//!
//! * [`Pdus`] builds one TPKT (TPKT, X.224 DT, TSDU, presentation, ACSE,
//!   RTSE, or the X.410-1984 shapes) per call: CR/CC, CN/AC/RF with
//!   RTORQ/RTOAC/RTORJ (open with a P1 bind, or `recover` quoting a lost
//!   connection), PT with RTTP, GTC/GTA, a transfer (AS, DT/RTTR segments
//!   with MIP/MIA checkpoints, AE, AEA) of a P1 message labelled with
//!   [`p1::build_message`], AR, FN/DN, AB.
//! * [`Conversation`] is one TCP connection between two MTAs as a list of
//!   [`Step`]s (send, send-but-not-captured, pause, FIN, RST); [`frames`]
//!   turns it into Ethernet frames with [`TcpConversation`], and
//!   [`write_pcapng`] merges the frames of several conversations by time
//!   into one capture. Tests mangle the frames in between (reorder,
//!   duplicate, split, drop) to get degenerate TCP.
//!
//! The timeline tests, the simulator and the fuzzers share it.

use crate::tracker::{Mode, Side};
use rtse_codec::acse::{self, Aare, Aarq, AcseApdu, External, SourceDiagnostic};
use rtse_codec::ber::Octets;
use rtse_codec::capture::write::{Frame, FrameSink, PcapngWriter, TcpConversation};
use rtse_codec::capture::{Direction, Timestamp};
use rtse_codec::p1::{self, Bind, BindError, MtsIdentifier};
use rtse_codec::presentation::{
    self, ContextDef, ContextResult, Cp, CpNormal, Cpa, CpaNormal, Cpr, CprNormal, Pdv, Ppdu, UserData,
};
use rtse_codec::rtse::{
    self, ConnectionData, DialogueMode, RefuseReason, Rtoac, Rtorj, Rtorq, RtseApdu, SessionConnectionIdentifier,
    SsUserRef,
};
use rtse_codec::session::{
    self, ConnectionId, Linking, Requirements, SerialNumber, Spdu, TokenSetting, Tokens, Tsdu, VERSION_2,
};
use rtse_codec::x410::{self, PAccept, PConnect, X410Pdu};
use rtse_codec::{cotp, tpkt};
use std::net::SocketAddr;

/// Presentation context of ACSE.
pub const PCID_ACSE: i64 = 1;
/// Presentation context of the RTSE APDUs (id-as-mta-rtse).
pub const PCID_RTSE: i64 = 3;
/// Presentation context of the MTS APDUs (id-as-mtse).
pub const PCID_MTSE: i64 = 5;

/// A session Connection Identifier: calling SS-user reference and common
/// reference (what a recovery quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnId {
    pub calling: String,
    pub common: String,
}

impl ConnId {
    pub fn new(calling: &str, common: &str) -> Self {
        ConnId { calling: calling.into(), common: common.into() }
    }
}

/// What a CN proposes.
#[derive(Debug, Clone)]
pub struct Cn {
    /// Token Setting Item (`00` all to the initiator, `15` Turn to the
    /// responder, `2A` called user's choice); `None` leaves it out.
    pub token_setting: Option<u8>,
    /// This connection's identifier.
    pub conn: ConnId,
    /// `recover` of the RTORQ: the lost connection; `None` = `open` (with
    /// an MTA bind).
    pub recover: Option<ConnId>,
    /// Two-way alternate (else monologue).
    pub twa: bool,
    pub checkpoint_size: i64,
    pub window_size: i64,
}

impl Cn {
    /// A fresh twa association identified by `conn`, Turn to the initiator.
    pub fn open(conn: ConnId) -> Self {
        Cn { token_setting: Some(0x00), conn, recover: None, twa: true, checkpoint_size: 1, window_size: 3 }
    }
    /// A recovery of `lost`, as `conn`, with Token Setting `token_setting`.
    pub fn recover(conn: ConnId, lost: ConnId, token_setting: u8) -> Self {
        Cn { token_setting: Some(token_setting), recover: Some(lost), ..Cn::open(conn) }
    }
}

/// What an AC answers.
#[derive(Debug, Clone)]
pub struct Ac {
    pub token_setting: Option<u8>,
    /// Answers a recovery (`connectionDataAC = recover`).
    pub recover: Option<ConnId>,
    pub checkpoint_size: i64,
    pub window_size: i64,
}

impl Ac {
    /// The AC that accepts `cn` as proposed (a called-user's-choice `2A`
    /// resolved to the responder's side).
    pub fn to(cn: &Cn) -> Self {
        Ac {
            token_setting: cn.token_setting.map(|t| if t == 0x2A { 0x15 } else { t }),
            recover: cn.recover.clone(),
            checkpoint_size: cn.checkpoint_size,
            window_size: cn.window_size,
        }
    }
}

/// Builds TPKTs (one TSDU each, in one X.224 DT) for one association.
#[derive(Debug, Clone, Copy)]
pub struct Pdus {
    pub mode: Mode,
}

fn ber<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

fn serial(n: u32) -> SerialNumber {
    SerialNumber::wrapping(n)
}

/// A BER INTEGER activity identifier (`02 01 n`), as RTSE sends it.
pub fn activity_id(n: u64) -> Vec<u8> {
    crate::tracker::ActivityId::number(n).as_bytes().to_vec()
}

impl Pdus {
    /// Normal mode (presentation + ACSE).
    pub const fn normal() -> Self {
        Pdus { mode: Mode::Normal }
    }
    /// X.410-1984 mode.
    pub const fn x410() -> Self {
        Pdus { mode: Mode::X410 }
    }

    /// One TSDU in a TPKT + X.224 DT (EOT).
    pub fn tpkt(tsdu: &Tsdu<'_>) -> Vec<u8> {
        let mut payload = cotp::dt_header(true).to_vec();
        session::emit_tsdu(tsdu, &mut payload);
        ber(|o| tpkt::emit(&tpkt::Tpkt::new(&payload), o))
    }

    fn tpdu(t: &cotp::Tpdu<'_>) -> Vec<u8> {
        let payload = ber(|o| cotp::emit(t, o));
        ber(|o| tpkt::emit(&tpkt::Tpkt::new(&payload), o))
    }

    /// X.224 CR (class 0, TPDU size 2^11).
    pub fn cr(&self) -> Vec<u8> {
        Self::tpdu(&cotp::Tpdu::Cr(cotp::Connect { src_ref: 1, tpdu_size: Some(11), ..cotp::Connect::default() }))
    }
    /// X.224 CC.
    pub fn cc(&self) -> Vec<u8> {
        Self::tpdu(&cotp::Tpdu::Cc(cotp::Connect {
            dst_ref: 1,
            src_ref: 2,
            tpdu_size: Some(11),
            ..cotp::Connect::default()
        }))
    }

    fn sci(&self, c: &ConnId) -> SessionConnectionIdentifier<'static> {
        let calling = Octets::borrowed(c.calling.as_bytes()).into_owned();
        SessionConnectionIdentifier {
            calling_ss_user_reference: match self.mode {
                Mode::Normal => SsUserRef::OctetString(calling),
                Mode::X410 => SsUserRef::T61String(calling),
            },
            common_reference: Octets::borrowed(c.common.as_bytes()).into_owned(),
            additional_reference_information: None,
        }
    }

    /// Normal mode: `apdu` (an RTSE APDU) in an ACSE APDU in a PPDU.
    fn presentation_data(pcid: i64, value: &[u8]) -> Vec<u8> {
        ber(|o| presentation::emit(&Ppdu::UserData(UserData::one(Pdv::single(pcid, value))), o))
    }

    fn contexts() -> Vec<ContextDef<'static>> {
        [
            (PCID_ACSE, presentation::ID_AS_ACSE),
            (PCID_RTSE, presentation::ID_AS_MTA_RTSE),
            (PCID_MTSE, presentation::ID_AS_MTSE),
        ]
        .into_iter()
        .map(|(pcid, abstract_syntax)| ContextDef {
            pcid,
            abstract_syntax,
            transfer_syntaxes: vec![presentation::BER].into(),
        })
        .collect()
    }

    /// CN with CP + AARQ + RTORQ (normal) or PConnect (X.410).
    pub fn cn(&self, c: &Cn) -> Vec<u8> {
        let bind = ber(|o| p1::emit_bind_argument(&Bind::Unauthenticated, self.mode == Mode::Normal, o));
        let rtorq = Rtorq {
            checkpoint_size: Some(c.checkpoint_size),
            window_size: Some(c.window_size),
            dialogue_mode: Some(if c.twa { DialogueMode::Twa } else { DialogueMode::Monologue }),
            connection_data: match &c.recover {
                Some(lost) => ConnectionData::Recover(self.sci(lost)),
                None => ConnectionData::Open(Some(&bind)),
            },
            application_protocol: (self.mode == Mode::X410).then_some(x410::APPLICATION_PROTOCOL_P1),
        };
        let user_data = match self.mode {
            Mode::Normal => {
                let rtorq = ber(|o| rtse::emit(&RtseApdu::Rtorq(rtorq), o));
                let mut aarq = Aarq::new(presentation::ID_AC_MTS_TRANSFER);
                aarq.user_information = Some(vec![External::single(PCID_RTSE, &rtorq)].into());
                let aarq = ber(|o| acse::emit(&AcseApdu::Aarq(aarq), o));
                let cp = Cp {
                    normal: Some(CpNormal {
                        context_list: Some(Self::contexts().into()),
                        user_data: Some(UserData::one(Pdv::single(PCID_ACSE, &aarq))),
                        ..CpNormal::default()
                    }),
                    ..Cp::default()
                };
                ber(|o| presentation::emit(&Ppdu::Cp(Box::new(cp)), o))
            }
            Mode::X410 => ber(|o| {
                x410::emit(&X410Pdu::PConnect(PConnect { data_transfer_syntax: x410::X409, user_data: rtorq }), o)
            }),
        };
        let mut cn = session::Connect::new(VERSION_2, TokenSetting(0), Requirements::RTSE, &user_data)
            .with_connection_id(ConnectionId::calling(c.conn.calling.as_bytes(), c.conn.common.as_bytes()));
        if let Some(item) = cn.item.as_mut() {
            item.token_setting = c.token_setting.map(TokenSetting);
        }
        Self::tpkt(&Tsdu::one(Spdu::cn(cn)))
    }

    /// AC with CPA + AARE + RTOAC (normal) or PAccept (X.410).
    pub fn ac(&self, a: &Ac) -> Vec<u8> {
        let bind = ber(|o| p1::emit_bind_result(&Bind::Unauthenticated, self.mode == Mode::Normal, o));
        let rtoac = Rtoac {
            checkpoint_size: Some(a.checkpoint_size),
            window_size: Some(a.window_size),
            connection_data: match &a.recover {
                Some(lost) => ConnectionData::Recover(self.sci(lost)),
                None => ConnectionData::Open(Some(&bind)),
            },
        };
        let user_data = match self.mode {
            Mode::Normal => {
                let rtoac = ber(|o| rtse::emit(&RtseApdu::Rtoac(rtoac), o));
                let mut aare = Aare::new(presentation::ID_AC_MTS_TRANSFER, 0, SourceDiagnostic::User(0));
                aare.user_information = Some(vec![External::single(PCID_RTSE, &rtoac)].into());
                let aare = ber(|o| acse::emit(&AcseApdu::Aare(aare), o));
                let results = (0..3)
                    .map(|_| ContextResult {
                        result: 0,
                        transfer_syntax: Some(presentation::BER),
                        provider_reason: None,
                    })
                    .collect();
                let cpa = Cpa {
                    normal: Some(CpaNormal {
                        result_list: Some(results),
                        user_data: Some(UserData::one(Pdv::single(PCID_ACSE, &aare))),
                        ..CpaNormal::default()
                    }),
                    ..Cpa::default()
                };
                ber(|o| presentation::emit(&Ppdu::Cpa(Box::new(cpa)), o))
            }
            Mode::X410 => ber(|o| {
                x410::emit(&X410Pdu::PAccept(PAccept { data_transfer_syntax: x410::X409, user_data: rtoac }), o)
            }),
        };
        let mut ac = session::Connect::new(VERSION_2, TokenSetting(0), Requirements::RTSE, &user_data);
        if let Some(item) = ac.item.as_mut() {
            item.token_setting = a.token_setting.map(TokenSetting);
        }
        Self::tpkt(&Tsdu::one(Spdu::ac(ac)))
    }

    /// RF with CPR + AARE (rejected) + RTORJ carrying a P1 bind error
    /// (normal), or PRefuse (X.410).
    pub fn rf(&self, reason: RefuseReason, error: BindError) -> Vec<u8> {
        let data = match self.mode {
            Mode::Normal => {
                let err = ber(|o| p1::emit_bind_error(error, true, o));
                let rtorj =
                    ber(|o| rtse::emit(&RtseApdu::Rtorj(Rtorj { refuse_reason: None, user_data: Some(&err) }), o));
                let mut aare = Aare::new(presentation::ID_AC_MTS_TRANSFER, 1, SourceDiagnostic::User(1));
                aare.user_information = Some(vec![External::single(PCID_RTSE, &rtorj)].into());
                let aare = ber(|o| acse::emit(&AcseApdu::Aare(aare), o));
                let cpr = Cpr::Normal(CprNormal {
                    user_data: Some(UserData::one(Pdv::single(PCID_ACSE, &aare))),
                    ..CprNormal::default()
                });
                ber(|o| presentation::emit(&Ppdu::Cpr(Box::new(cpr)), o))
            }
            Mode::X410 => ber(|o| x410::emit(&X410Pdu::PRefuse(x410::PRefuse { refuse_reason: reason }), o)),
        };
        // Reason code 2: rejected by the called SS-user, user data follows.
        Self::tpkt(&Tsdu::one(Spdu::rf(2, &data)))
    }

    /// PT (data token) carrying RT-TURN-PLEASE with `priority`.
    pub fn pt(&self, priority: i64) -> Vec<u8> {
        let ud = match self.mode {
            Mode::Normal => Self::presentation_data(PCID_RTSE, &ber(|o| rtse::emit(&RtseApdu::Rttp(priority), o))),
            Mode::X410 => ber(|o| x410::emit(&X410Pdu::Priority(priority), o)),
        };
        Self::tpkt(&Tsdu::one(Spdu::pt(Tokens::DATA, Some(&ud))))
    }

    /// GTC (RT-TURN-GIVE).
    pub fn gtc(&self) -> Vec<u8> {
        Self::tpkt(&Tsdu::one(Spdu::gtc()))
    }
    /// GTA.
    pub fn gta(&self) -> Vec<u8> {
        Self::tpkt(&Tsdu::one(Spdu::gta()))
    }
    /// AS (activity `id`).
    pub fn as_(&self, id: u64) -> Vec<u8> {
        Self::tpkt(&Tsdu::after_gt(Spdu::as_(&activity_id(id))))
    }
    /// AR: resume activity `old` of the lost connection `lost` from checkpoint
    /// `serial`, as activity `new`.
    pub fn ar(&self, lost: &ConnId, old: u64, serial: u32, new: u64) -> Vec<u8> {
        let (old, new) = (activity_id(old), activity_id(new));
        let linking = Linking::new(&old, self::serial(serial))
            .with_refs(Some(lost.calling.as_bytes()), Some(lost.common.as_bytes()));
        Self::tpkt(&Tsdu::after_gt(Spdu::ar(linking, &new)))
    }
    /// DT carrying one transfer segment (an RTTR in normal mode, the octets
    /// themselves in X.410 mode).
    pub fn dt(&self, segment: &[u8]) -> Vec<u8> {
        let ud = match self.mode {
            Mode::Normal => {
                Self::presentation_data(PCID_RTSE, &ber(|o| rtse::emit(&RtseApdu::Rttr(Octets::borrowed(segment)), o)))
            }
            Mode::X410 => segment.to_vec(),
        };
        Self::tpkt(&Tsdu::after_gt(Spdu::dt(&ud)))
    }
    /// MIP `n` (confirmation required).
    pub fn mip(&self, n: u32) -> Vec<u8> {
        Self::tpkt(&Tsdu::after_gt(Spdu::mip(serial(n), true)))
    }
    /// MIA `n`.
    pub fn mia(&self, n: u32) -> Vec<u8> {
        Self::tpkt(&Tsdu::after_gt(Spdu::mia(serial(n))))
    }
    /// AE `n`.
    pub fn ae(&self, n: u32) -> Vec<u8> {
        Self::tpkt(&Tsdu::after_gt(Spdu::ae(serial(n))))
    }
    /// AEA `n`.
    pub fn aea(&self, n: u32) -> Vec<u8> {
        Self::tpkt(&Tsdu::after_gt(Spdu::aea(serial(n))))
    }
    /// FN (RT-CLOSE: with RLRQ in normal mode).
    pub fn fn_(&self) -> Vec<u8> {
        let ud = self.release_data(true);
        Self::tpkt(&Tsdu::one(Spdu::fn_(None, ud.as_deref())))
    }
    /// DN (with RLRE in normal mode).
    pub fn dn(&self) -> Vec<u8> {
        let ud = self.release_data(false);
        Self::tpkt(&Tsdu::one(Spdu::dn(ud.as_deref())))
    }
    fn release_data(&self, request: bool) -> Option<Vec<u8>> {
        (self.mode == Mode::Normal).then(|| {
            let apdu = if request {
                AcseApdu::Rlrq(acse::Rlrq { reason: Some(0), ..acse::Rlrq::default() })
            } else {
                AcseApdu::Rlre(acse::Rlre { reason: Some(0), ..acse::Rlre::default() })
            };
            Self::presentation_data(PCID_ACSE, &ber(|o| acse::emit(&apdu, o)))
        })
    }
    /// AB without user data (an RT-U-ABORT; the transport is released).
    pub fn ab(&self) -> Vec<u8> {
        Self::tpkt(&Tsdu::one(Spdu::ab(session::TD_RELEASE, None)))
    }

    /// The transferred APDU of a P1 message labelled `local_id` (MTS
    /// identifier `/C=XX/A=ADMD/P=PRMD/;local_id`) with `content_len`
    /// octets of content: in normal mode wrapped in the EXTERNAL that RTTR
    /// segments carry, in X.410 mode the bare MTS-APDU.
    pub fn message(&self, local_id: &str, content_len: usize) -> Vec<u8> {
        let id = MtsIdentifier::new("XX", "ADMD", Some("PRMD"), local_id);
        let content: Vec<u8> = (0..content_len).map(|i| b'a' + (i % 26) as u8).collect();
        let msg = p1::build_message(&id, &content);
        match self.mode {
            Mode::Normal => ber(|o| acse::emit_external(&External::single(PCID_MTSE, &msg), o)),
            Mode::X410 => msg,
        }
    }

    /// The steps of one transfer from `sender`: AS `activity`, the APDU in
    /// DT segments of `segment` octets with a MIP/MIA checkpoint after each
    /// segment but the last, then AE and the receiver's AEA.
    pub fn transfer(&self, sender: Side, activity: u64, apdu: &[u8], segment: usize) -> Vec<Step> {
        let mut steps = vec![Step::Send(sender, self.as_(activity))];
        let chunks: Vec<&[u8]> = apdu.chunks(segment.max(1)).collect();
        let mut n = 0;
        for (i, c) in chunks.iter().enumerate() {
            steps.push(Step::Send(sender, self.dt(c)));
            if i + 1 < chunks.len() {
                n += 1;
                steps.push(Step::Send(sender, self.mip(n)));
                steps.push(Step::Send(sender.peer(), self.mia(n)));
            }
        }
        steps.push(Step::Send(sender, self.ae(n + 1)));
        steps.push(Step::Send(sender.peer(), self.aea(n + 1)));
        steps
    }

    /// CR/CC then CN/AC (accepting as proposed).
    pub fn establish(&self, cn: &Cn) -> Vec<Step> {
        vec![
            Step::Send(Side::Initiator, self.cr()),
            Step::Send(Side::Responder, self.cc()),
            Step::Send(Side::Initiator, self.cn(cn)),
            Step::Send(Side::Responder, self.ac(&Ac::to(cn))),
        ]
    }

    /// FN/DN.
    pub fn release(&self) -> Vec<Step> {
        vec![Step::Send(Side::Initiator, self.fn_()), Step::Send(Side::Responder, self.dn())]
    }
}

/// One step of a [`Conversation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `side` sends these octets (one TCP segment per `segment` octets).
    Send(Side, Vec<u8>),
    /// `side` sends them but the capture misses the segment(s); the peer
    /// acknowledges them (so the reader sees a gap).
    Unseen(Side, Vec<u8>),
    /// `side` sends them just before the connection dies: never
    /// acknowledged (the peer did not get them); `captured` says whether
    /// the capture saw the segment.
    Lost { from: Side, bytes: Vec<u8>, captured: bool },
    /// Nothing for this long (nanoseconds).
    Pause(u64),
    /// RST from `side`.
    Rst(Side),
    /// FIN from both sides.
    Fin,
}

/// One TCP connection between two MTAs.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The association-initiator (TCP client).
    pub client: SocketAddr,
    /// The responder (TCP server, usually port 102).
    pub server: SocketAddr,
    /// Capture time of the first frame.
    pub start: Timestamp,
    /// Time between frames (ns).
    pub tick_ns: u64,
    /// TCP segment sizes for data (the last repeats); empty: one segment
    /// per step.
    pub segments: Vec<usize>,
    /// Whether the handshake is captured (else the capture starts
    /// mid-stream).
    pub handshake: bool,
    /// With `segments`: each segment after the first of a step also
    /// carries this many octets of the one before (an overlapping
    /// retransmission with the same octets).
    pub overlap: usize,
    pub steps: Vec<Step>,
}

impl Conversation {
    /// A conversation between `client` and `server` starting at `start`
    /// (1 ms between frames, handshake captured).
    pub fn new(client: SocketAddr, server: SocketAddr, start: Timestamp, steps: Vec<Step>) -> Self {
        Conversation {
            client,
            server,
            start,
            tick_ns: 1_000_000,
            segments: Vec::new(),
            handshake: true,
            overlap: 0,
            steps,
        }
    }

    /// Time just after the last frame (to start a later conversation).
    pub fn end(&self) -> Timestamp {
        let frames = frames(self);
        frames.last().map_or(self.start, |f| Timestamp::from_nanos(f.time.as_nanos() + self.tick_ns))
    }
}

const fn dir(side: Side) -> Direction {
    match side {
        Side::Initiator => Direction::ToServer,
        Side::Responder => Direction::ToClient,
    }
}

/// The frames of a conversation (data acknowledged by the peer after each
/// step, so a missing segment is a gap the reassembler can see).
pub fn frames(c: &Conversation) -> Vec<Frame> {
    let mut t = TcpConversation::new(c.client, c.server).with_time(c.start, c.tick_ns);
    let mut out = Vec::new();
    let mut shift = 0u64;
    let take = |t: &mut TcpConversation, shift: u64, out: &mut Vec<Frame>, keep: bool| {
        for mut f in t.take_frames() {
            if keep {
                f.time = Timestamp::from_nanos(f.time.as_nanos() + shift);
                out.push(f);
            }
        }
    };
    if c.handshake {
        t.syn();
    } else {
        t.assume_established();
    }
    take(&mut t, shift, &mut out, true);
    for s in &c.steps {
        match s {
            Step::Send(side, b) | Step::Unseen(side, b) => {
                send(&mut t, c, dir(*side), b);
                take(&mut t, shift, &mut out, matches!(s, Step::Send(..)));
                t.ack(dir(side.peer()));
                take(&mut t, shift, &mut out, true);
            }
            Step::Lost { from, bytes, captured } => {
                send(&mut t, c, dir(*from), bytes);
                take(&mut t, shift, &mut out, *captured);
            }
            Step::Pause(ns) => shift += ns,
            Step::Rst(side) => {
                t.rst(dir(*side));
                take(&mut t, shift, &mut out, true);
            }
            Step::Fin => {
                t.close();
                take(&mut t, shift, &mut out, true);
            }
        }
    }
    out
}

/// Sends `b` as the conversation's segmentation says.
fn send(t: &mut TcpConversation, c: &Conversation, d: Direction, b: &[u8]) {
    if c.segments.is_empty() {
        t.send(d, b);
    } else if c.overlap == 0 {
        t.send_segmented(d, b, &c.segments);
    } else {
        let base = t.next_seq(d);
        let ack = t.next_seq(match d {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        });
        let (mut at, mut i) = (0usize, 0usize);
        while at < b.len() {
            let size = c.segments.get(i).or(c.segments.last()).copied().unwrap_or(b.len()).max(1);
            let end = (at + size).min(b.len());
            let from = at.saturating_sub(if i == 0 { 0 } else { c.overlap });
            let flags = rtse_codec::capture::link::flags::PSH | rtse_codec::capture::link::flags::ACK;
            t.raw(d, base.wrapping_add(from as u32), ack, flags, &b[from..end]);
            at = end;
            i += 1;
        }
        t.advance(d, b.len() as u32);
    }
}

/// A pcapng (one Ethernet interface) of `frames`, in the order given.
pub fn pcapng_of(frames: &[Frame]) -> Vec<u8> {
    let mut w = PcapngWriter::ethernet();
    for f in frames {
        let _ = w.write_frame(f.time, &f.data, f.orig_len);
    }
    w.into_inner().unwrap_or_default()
}

/// The frames of every conversation, merged by time (stable), as a pcapng.
pub fn write_pcapng(convs: &[Conversation]) -> Vec<u8> {
    let mut all: Vec<Frame> = convs.iter().flat_map(frames).collect();
    all.sort_by_key(|f| f.time);
    pcapng_of(&all)
}

/// `10.0.0.n:port`.
pub fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], port))
}

/// Ready-made conversations: the field failure and the other situations
/// the timeline must recognise, each between two MTAs at a [`Place`].
pub mod scenario {
    use super::{Cn, ConnId, Conversation, Pdus, Step};
    use crate::tracker::Side::{Initiator as A, Responder as B};
    use rtse_codec::capture::Timestamp;
    use std::net::SocketAddr;

    /// Where and when a scenario happens: MTA A (`a`, the initiator; its
    /// port is the first of the successive connections' ports), MTA B
    /// (`b`), the start time, and a tag that makes connection references
    /// and message identifiers unique.
    #[derive(Debug, Clone)]
    pub struct Place {
        pub a: SocketAddr,
        pub b: SocketAddr,
        pub start: Timestamp,
        pub tag: String,
    }

    impl Default for Place {
        fn default() -> Self {
            Place {
                a: super::addr(1, 40_001),
                b: super::addr(2, 102),
                start: Timestamp::new(1_735_732_800, 0),
                tag: "A".into(),
            }
        }
    }

    impl Place {
        /// Connection identifier `n` of MTA A.
        pub fn conn(&self, n: u32) -> ConnId {
            ConnId::new(&format!("MTA-{}/{n:04}", self.tag), &format!("2501011{n:05}Z"))
        }
        /// Message identifier `n`.
        pub fn msg(&self, n: u32) -> String {
            format!("{}-MSG-{n:04}", self.tag)
        }
        /// The `k`-th connection (from 0) of the scenario, starting at `start`.
        fn conv(&self, k: u16, start: Timestamp, steps: Vec<Step>) -> Conversation {
            let a = SocketAddr::new(self.a.ip(), self.a.port().wrapping_add(k));
            Conversation::new(a, self.b, start, steps)
        }
        fn later(t: Timestamp, secs: u64) -> Timestamp {
            Timestamp::new(t.secs + secs, t.nanos)
        }
    }

    /// A and B associate (A holds the Turn), A transfers a message, gives
    /// the Turn (GTC) and the connection is reset before B gets it (the GTC
    /// segment is in the capture when `gtc_captured`). A recovers on a new
    /// TCP connection (new port) with Token Setting `setting` (`15` the Turn
    /// to B, `00` to A), asks for the Turn (PT), B never answers, and A
    /// finally aborts (the backlog threshold): `turn-lost` on the recovery.
    pub fn field_failure(p: &Place, pdus: Pdus, gtc_captured: bool, setting: u8) -> Vec<Conversation> {
        let mut s = pdus.establish(&Cn::open(p.conn(1)));
        s.extend(pdus.transfer(A, 1, &pdus.message(&p.msg(1), 300), 128));
        s.push(Step::Lost { from: A, bytes: pdus.gtc(), captured: gtc_captured });
        s.push(Step::Rst(A));
        let first = p.conv(0, p.start, s);
        let cn = Cn::recover(p.conn(2), p.conn(1), setting);
        let mut r = pdus.establish(&cn);
        r.push(Step::Send(A, pdus.pt(0)));
        r.push(Step::Pause(40_000_000_000));
        r.push(Step::Send(A, pdus.ab()));
        r.push(Step::Fin);
        let second = p.conv(1, Place::later(first.end(), 2), r);
        vec![first, second]
    }

    /// A clean two-way-alternate exchange: A transfers, B asks for the
    /// Turn (PT) and gets it (GTC/GTA), B transfers, A asks for it back to
    /// release (PT, GTC/GTA, FN/DN). No anomaly.
    pub fn clean_twa(p: &Place, pdus: Pdus) -> Vec<Conversation> {
        let mut s = pdus.establish(&Cn::open(p.conn(1)));
        s.extend(pdus.transfer(A, 1, &pdus.message(&p.msg(1), 500), 200));
        s.push(Step::Send(B, pdus.pt(1)));
        s.push(Step::Send(A, pdus.gtc()));
        s.push(Step::Send(B, pdus.gta()));
        s.extend(pdus.transfer(B, 2, &pdus.message(&p.msg(2), 100), 256));
        s.push(Step::Send(A, pdus.pt(0)));
        s.push(Step::Send(B, pdus.gtc()));
        s.push(Step::Send(A, pdus.gta()));
        s.extend(pdus.release());
        s.push(Step::Fin);
        vec![p.conv(0, p.start, s)]
    }

    /// A holds the Turn and starts a transfer; B starts one too.
    pub fn two_holders(p: &Place, pdus: Pdus) -> Vec<Conversation> {
        let mut s = pdus.establish(&Cn::open(p.conn(1)));
        s.push(Step::Send(A, pdus.as_(1)));
        s.push(Step::Send(A, pdus.dt(b"first")));
        s.push(Step::Send(B, pdus.as_(7)));
        s.push(Step::Fin);
        vec![p.conv(0, p.start, s)]
    }

    /// B, which does not hold the Turn, sends a transfer.
    pub fn data_without_turn(p: &Place, pdus: Pdus) -> Vec<Conversation> {
        let mut s = pdus.establish(&Cn::open(p.conn(1)));
        s.extend(pdus.transfer(B, 1, &pdus.message(&p.msg(1), 50), 100));
        s.extend(pdus.release());
        s.push(Step::Fin);
        vec![p.conv(0, p.start, s)]
    }

    /// A's transfer is cut after its first checkpoint; A recovers but
    /// neither resumes (AR) nor restarts it, and releases: `transfer-lost`.
    pub fn lost_transfer(p: &Place, pdus: Pdus) -> Vec<Conversation> {
        let mut s = pdus.establish(&Cn::open(p.conn(1)));
        let apdu = pdus.message(&p.msg(1), 400);
        s.push(Step::Send(A, pdus.as_(1)));
        s.push(Step::Send(A, pdus.dt(&apdu[..200])));
        s.push(Step::Send(A, pdus.mip(1)));
        s.push(Step::Send(B, pdus.mia(1)));
        s.push(Step::Lost { from: A, bytes: pdus.dt(&apdu[200..]), captured: true });
        s.push(Step::Rst(B));
        let first = p.conv(0, p.start, s);
        let mut r = pdus.establish(&Cn::recover(p.conn(2), p.conn(1), 0x00));
        r.extend(pdus.release());
        r.push(Step::Fin);
        let second = p.conv(1, Place::later(first.end(), 5), r);
        vec![first, second]
    }

    /// A's transfer is delivered (B sends AEA) but the connection drops
    /// before A sees the AEA; after recovery A sends the same message again
    /// and B delivers it again: `transfer-duplicated`.
    pub fn duplicated_transfer(p: &Place, pdus: Pdus) -> Vec<Conversation> {
        let mut s = pdus.establish(&Cn::open(p.conn(1)));
        let apdu = pdus.message(&p.msg(1), 300);
        s.push(Step::Send(A, pdus.as_(1)));
        s.push(Step::Send(A, pdus.dt(&apdu)));
        s.push(Step::Send(A, pdus.ae(1)));
        s.push(Step::Lost { from: B, bytes: pdus.aea(1), captured: true });
        s.push(Step::Rst(A));
        let first = p.conv(0, p.start, s);
        let mut r = pdus.establish(&Cn::recover(p.conn(2), p.conn(1), 0x00));
        r.extend(pdus.transfer(A, 2, &apdu, 1000));
        r.extend(pdus.release());
        r.push(Step::Fin);
        let second = p.conv(1, Place::later(first.end(), 5), r);
        vec![first, second]
    }

    /// Every scenario by name, each on its own ports (A's port base moves
    /// by 10 per scenario, so that no two reuse a TCP 4-tuple; the tag gets
    /// the scenario's number, so references and labels differ), for corpora
    /// and benchmarks. Each starts at `p.start`.
    pub fn all(p: &Place, pdus: Pdus) -> Vec<(&'static str, Vec<Conversation>)> {
        let at = |i: u16| Place {
            a: SocketAddr::new(p.a.ip(), p.a.port().wrapping_add(10 * i)),
            tag: format!("{}{i}", p.tag),
            ..p.clone()
        };
        vec![
            ("field-failure", field_failure(&at(0), pdus, true, 0x15)),
            ("field-failure-gtc-unseen", field_failure(&at(1), pdus, false, 0x15)),
            ("clean-twa", clean_twa(&at(2), pdus)),
            ("two-holders", two_holders(&at(3), pdus)),
            ("data-without-turn", data_without_turn(&at(4), pdus)),
            ("lost-transfer", lost_transfer(&at(5), pdus)),
            ("duplicated-transfer", duplicated_transfer(&at(6), pdus)),
        ]
    }
}
