//! The observer of `rtse proxy`: takes the pumps' [`Msg`]s in order,
//! decodes what was forwarded with one [`AssociationDecoder`] per
//! connection, feeds the timeline [`Engine`] (hence the Turn tracker and
//! the [`AssociationLinker`](crate::tracker::AssociationLinker): recoveries
//! on new connections are linked to what they recover), prints one line
//! per Turn-relevant row with the holder after it, anomalies and faults as
//! they happen, and writes both legs of every connection to a pcapng.
//!
//! # What the tracker sees
//!
//! The octets *forwarded*: what the receiving MTA got. A withheld PDU
//! never reached its peer, so the tracker does not see it (the fault line
//! shows it; the pcapng's receiving leg has it). A forged AB is not fed
//! either: neither MTA sent it; the tracker sees the connection end
//! (`T-FIN`) that follows it.
//!
//! # Frames
//!
//! Frame numbers are those of the pcapng (written or not): per connection
//! leg A is client to proxy, leg B proxy to upstream MTA, each a TCP
//! conversation with its handshake, data segments of at most
//! [`SEGMENT`] octets, FINs or RSTs. A row's frame is the frame that
//! delivered the end of its TPKT to the receiving MTA; a fault's frame is
//! the frame of the PDU it hit, on the leg it came in by.

use super::fault::Effect;
use super::relay::{FaultNote, Msg};
use crate::timeline::text::{clock, Style};
use crate::timeline::{Association, Engine, Event, Settings};
use crate::tracker::{AnomalyKind, Side};
use rtse_codec::capture::stacks::CaptureItem;
use rtse_codec::capture::write::{FrameSink, PcapngWriter, TcpConversation};
use rtse_codec::capture::{CloseHow, ConnKey, Direction, Timestamp};
use rtse_codec::stack::{AssociationDecoder, Sender};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::rc::Rc;

/// Largest TCP payload per frame in the pcapng.
pub const SEGMENT: usize = 16 * 1024;

/// One injected fault, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRecord {
    pub conn: u64,
    pub frame: u64,
    pub from: Side,
    pub effect: String,
    pub why: String,
    pub pdus: Vec<&'static str>,
}

/// Totals of a proxy run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub connections: u64,
    pub connect_failures: u64,
    pub associations: u64,
    pub recoveries: u64,
    /// Octets forwarded from initiator to responder and back.
    pub octets: [u64; 2],
    /// Turn-relevant rows.
    pub rows: u64,
    pub faults: Vec<FaultRecord>,
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Every anomaly: (association, kind, frame, detail).
    pub anomaly_list: Vec<(u32, AnomalyKind, u64, String)>,
    pub unframed: u64,
    pub malformed: u64,
}

struct Legs {
    /// Leg A (client, proxy listen address), leg B (proxy, upstream).
    convs: Option<[TcpConversation; 2]>,
    fins: [bool; 2],
    closed: bool,
}

/// A pcapng being written, or just the frame count it would have.
struct Recorder {
    out: Option<PcapngWriter<std::io::BufWriter<std::fs::File>>>,
    frames: u64,
    error: Option<std::io::Error>,
}

struct Sink<'a> {
    w: &'a mut PcapngWriter<std::io::BufWriter<std::fs::File>>,
    time: Timestamp,
    frames: &'a mut u64,
}

impl FrameSink for Sink<'_> {
    fn write_frame(&mut self, _t: Timestamp, data: &[u8], orig_len: u32) -> std::io::Result<()> {
        *self.frames += 1;
        self.w.packet(0, self.time, data, orig_len)
    }
}

impl Recorder {
    /// Run `op` on leg `leg` of `legs`, which writes `count` frames when
    /// not recorded; returns the last frame's number.
    fn leg(
        &mut self,
        legs: &mut Legs,
        leg: usize,
        time: Timestamp,
        count: u64,
        op: impl FnOnce(&mut TcpConversation),
    ) -> u64 {
        match (&mut self.out, &mut legs.convs) {
            (Some(w), Some(convs)) => {
                op(&mut convs[leg]);
                let mut sink = Sink { w, time, frames: &mut self.frames };
                if let Err(e) = convs[leg].write_to(&mut sink) {
                    self.error.get_or_insert(e);
                    self.out = None;
                }
            }
            _ => self.frames += count,
        }
        self.frames
    }
}

fn segments(n: usize) -> u64 {
    n.div_ceil(SEGMENT) as u64
}

/// Which leg carries octets from `from` into the proxy (`in`) and out of it.
const fn legs_of(from: Sender) -> (usize, usize, Direction) {
    match from {
        Sender::Initiator => (0, 1, Direction::ToServer),
        Sender::Responder => (1, 0, Direction::ToClient),
    }
}

struct Conn {
    dec: AssociationDecoder,
    legs: Legs,
    /// Stream offset of the next forwarded octet per direction.
    offset: [u64; 2],
}

/// A live row, as the engine's hook hands it over.
type Row = (u32, Event, Vec<crate::timeline::AnomalyEntry>);

/// The observer (see the [module docs](self)).
pub struct Observer<'o> {
    engine: Engine<Box<dyn FnMut(Association)>>,
    rows: Rc<RefCell<Vec<Row>>>,
    reports: Rc<RefCell<Vec<Association>>>,
    conns: HashMap<u64, Conn>,
    rec: Recorder,
    out: &'o mut dyn Write,
    style: Style,
    /// Print every row (else only faults, anomalies, connections).
    pub verbose_rows: bool,
    pub totals: Totals,
    /// (assoc, kind, frame) already printed live.
    printed: HashSet<(u32, AnomalyKind, u64)>,
    /// Associations reported so far (for JSON and SVG).
    pub reported: Vec<Association>,
    /// Keep reported associations at most (beyond, counted).
    pub keep: usize,
    pub not_kept: usize,
    /// Associations whose recovery link was printed.
    linked: HashSet<u32>,
}

impl<'o> Observer<'o> {
    pub fn new(
        settings: Settings,
        pcapng: Option<std::fs::File>,
        out: &'o mut dyn Write,
        style: Style,
    ) -> std::io::Result<Self> {
        let rows: Rc<RefCell<Vec<Row>>> = Rc::default();
        let reports: Rc<RefCell<Vec<Association>>> = Rc::default();
        let r2 = Rc::clone(&reports);
        let emit: Box<dyn FnMut(Association)> = Box::new(move |a| r2.borrow_mut().push(a));
        let mut engine = Engine::new(settings, emit);
        let rows2 = Rc::clone(&rows);
        engine.set_row_hook(Box::new(move |id, ev, anomalies| {
            rows2.borrow_mut().push((id, ev.clone(), anomalies.to_vec()));
        }));
        let out_w = match pcapng {
            Some(f) => {
                let mut w = PcapngWriter::new(std::io::BufWriter::with_capacity(1 << 16, f))?;
                w.add_interface(rtse_codec::capture::link::LINKTYPE_ETHERNET, true)?;
                Some(w)
            }
            None => None,
        };
        Ok(Observer {
            engine,
            rows,
            reports,
            conns: HashMap::new(),
            rec: Recorder { out: out_w, frames: 0, error: None },
            out,
            style,
            verbose_rows: true,
            totals: Totals::default(),
            printed: HashSet::new(),
            reported: Vec::new(),
            keep: crate::timeline::SVG_MAX_ASSOCIATIONS,
            not_kept: 0,
            linked: HashSet::new(),
        })
    }

    fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{s}");
        let _ = self.out.flush();
    }

    fn flush_rows(&mut self, conn: u64) {
        let rows = std::mem::take(&mut *self.rows.borrow_mut());
        for (id, ev, anomalies) in rows {
            self.totals.rows += 1;
            if ev.pdus.contains(&"MALFORMED") {
                self.totals.malformed += 1;
            }
            if self.verbose_rows || !anomalies.is_empty() {
                let st = self.style;
                let time = ev.time.map(clock).unwrap_or_default();
                let pdus = ev.pdus.join(",");
                let note = if ev.note.is_empty() { String::new() } else { format!("  {}", st.dim(&ev.note)) };
                let holder = st.holder(ev.turn, 0);
                let s = format!(
                    "{time}  c{conn:<3} #{id:<3} f{:<6} {:<9} {:<14} -> {holder}{note}",
                    ev.frame,
                    ev.from.name(),
                    pdus
                );
                self.line(&s);
            }
            for a in anomalies {
                self.anomaly(id, a.kind, a.frame, a.by, &a.detail);
            }
        }
        self.settled_reports();
    }

    fn anomaly(&mut self, id: u32, kind: AnomalyKind, frame: u64, by: Option<Side>, detail: &str) {
        if !self.printed.insert((id, kind, frame)) {
            return;
        }
        *self.totals.anomalies.entry(kind.name()).or_default() += 1;
        self.totals.anomaly_list.push((id, kind, frame, detail.to_string()));
        let by = by.map(|s| format!(" (by the {})", s.name())).unwrap_or_default();
        let s = self.style.red(&format!("  !! #{id} {}{by} at frame {frame}: {detail}", kind.name()));
        self.line(&s);
    }

    /// Print what the reports add (anomalies judged at the end, recovery
    /// links) and keep them for JSON/SVG.
    fn settled_reports(&mut self) {
        let reports = std::mem::take(&mut *self.reports.borrow_mut());
        for a in reports {
            self.totals.associations += 1;
            if let Some(r) = a.recovers {
                self.totals.recoveries += 1;
                if self.linked.insert(a.id) {
                    self.line(&format!("   #{} recovered #{r}", a.id));
                }
            }
            for x in &a.anomalies {
                self.anomaly(a.id, x.kind, x.frame, x.by, &x.detail);
            }
            if self.reported.len() < self.keep {
                self.reported.push(a);
            } else {
                self.not_kept += 1;
            }
        }
    }

    fn fault_line(&mut self, conn: u64, frame: u64, from: Sender, note: &FaultNote) {
        let side = crate::observe::side(from);
        let what = match note.effect {
            Effect::DropBefore(k) => format!("{} before {}", k.name(), note.pdus.join(",")),
            Effect::DropAfter(k) => format!("{} after {}", k.name(), note.pdus.join(",")),
            Effect::Withhold => format!("withheld {}", note.pdus.join(",")),
            Effect::Delay(ms) => format!("delayed {} by {ms} ms", note.pdus.join(",")),
        };
        self.totals.faults.push(FaultRecord {
            conn,
            frame,
            from: side,
            effect: note.effect.to_string(),
            why: note.why.clone(),
            pdus: note.pdus.clone(),
        });
        let s = self.style.paint(
            "1;33",
            &format!(
                "{}  c{conn:<3} FAULT f{frame}: {what} from the {} [{}]",
                clock(super::relay::now()),
                side.name(),
                note.why
            ),
        );
        self.line(&s);
    }

    /// Handle one message of the pumps.
    pub fn handle(&mut self, m: Msg) {
        match m {
            Msg::Open { conn, client, listen, local, upstream, time } => {
                self.totals.connections += 1;
                let convs = self
                    .rec
                    .out
                    .is_some()
                    .then(|| [TcpConversation::new(client, listen), TcpConversation::new(local, upstream)]);
                let mut c = Conn {
                    dec: AssociationDecoder::new(),
                    legs: Legs { convs, fins: [false; 2], closed: false },
                    offset: [0; 2],
                };
                self.rec.leg(&mut c.legs, 0, time, 3, |t| {
                    t.syn();
                });
                let frame = self.rec.leg(&mut c.legs, 1, time, 3, |t| {
                    t.syn();
                });
                self.conns.insert(conn, c);
                self.engine.item(CaptureItem::Open {
                    conn,
                    key: ConnKey { client, server: upstream },
                    frame,
                    time,
                    mid_stream: false,
                });
                if self.verbose_rows {
                    self.line(&format!(
                        "{}  c{conn:<3} open {client} -> {listen} | {local} -> {upstream}",
                        clock(time)
                    ));
                }
                self.flush_rows(conn);
            }
            Msg::ConnectFailed { conn, client, error } => {
                self.totals.connect_failures += 1;
                let s = self.style.red(&format!("c{conn} from {client}: upstream MTA unreachable: {error}"));
                self.line(&s);
            }
            Msg::Data { conn, from, received, forwarded, time, fault } => {
                let Some(c) = self.conns.get_mut(&conn) else { return };
                let (inb, outb, dir) = legs_of(from);
                let in_frame = self.rec.leg(&mut c.legs, inb, time, segments(received.len()), |t| {
                    t.send_segmented(dir, &received, &[SEGMENT]);
                });
                let fwd = &received[..forwarded.min(received.len())];
                if !fwd.is_empty() {
                    self.rec.leg(&mut c.legs, outb, time, segments(fwd.len()), |t| {
                        t.send_segmented(dir, fwd, &[SEGMENT]);
                    });
                }
                let frame = self.rec.frames;
                self.totals.octets[inb] += fwd.len() as u64;
                c.offset[inb] += fwd.len() as u64;
                let engine = &mut self.engine;
                c.dec.push(from, fwd, |d| {
                    engine.item(CaptureItem::Pdu {
                        conn,
                        frame,
                        time,
                        from: d.from,
                        stream_offset: d.stream_offset,
                        result: &d.result,
                    });
                });
                // Before the rows this data produced (flushed next).
                if let Some(note) = &fault {
                    self.fault_line(conn, in_frame, from, note);
                }
                self.flush_rows(conn);
            }
            Msg::Forged { conn, bytes, time } => {
                let Some(c) = self.conns.get_mut(&conn) else { return };
                self.rec.leg(&mut c.legs, 1, time, 1, |t| {
                    t.send(Direction::ToServer, &bytes);
                });
                let f = self.rec.leg(&mut c.legs, 0, time, 1, |t| {
                    t.send(Direction::ToClient, &bytes);
                });
                let s = self.style.paint(
                    "1;33",
                    &format!("{}  c{conn:<3} FAULT f{f}: forged session AB sent to both MTAs", clock(time)),
                );
                self.line(&s);
            }
            Msg::Fin { conn, from, time } => {
                let Some(c) = self.conns.get_mut(&conn) else { return };
                let (inb, outb, dir) = legs_of(from);
                if !c.legs.fins[inb] && !c.legs.closed {
                    c.legs.fins[inb] = true;
                    self.rec.leg(&mut c.legs, inb, time, 1, |t| {
                        t.fin(dir);
                    });
                    self.rec.leg(&mut c.legs, outb, time, 1, |t| {
                        t.fin(dir);
                    });
                }
            }
            Msg::Close { conn, rst, time, reason } => {
                let Some(mut c) = self.conns.remove(&conn) else { return };
                if !c.legs.closed {
                    c.legs.closed = true;
                    if rst {
                        // The proxy resets both: towards the client on leg A,
                        // towards the upstream MTA on leg B.
                        self.rec.leg(&mut c.legs, 0, time, 1, |t| {
                            t.rst(Direction::ToClient);
                        });
                        self.rec.leg(&mut c.legs, 1, time, 1, |t| {
                            t.rst(Direction::ToServer);
                        });
                    } else {
                        // The proxy's own FIN (teardown, idle, stop) towards
                        // each MTA whose direction had not ended yet.
                        if !c.legs.fins[1] {
                            self.rec.leg(&mut c.legs, 0, time, 1, |t| {
                                t.fin(Direction::ToClient);
                            });
                        }
                        if !c.legs.fins[0] {
                            self.rec.leg(&mut c.legs, 1, time, 1, |t| {
                                t.fin(Direction::ToServer);
                            });
                        }
                    }
                }
                let frame = self.rec.frames;
                let how = if rst { CloseHow::Rst } else { CloseHow::Fin };
                self.engine.item(CaptureItem::Close { conn, frame, time, how });
                if self.verbose_rows {
                    self.line(&format!(
                        "{}  c{conn:<3} closed ({}{reason})",
                        clock(time),
                        if rst { "RST: " } else { "" }
                    ));
                }
                self.flush_rows(conn);
            }
            Msg::Unframed { conn, from, at, error } => {
                self.totals.unframed += 1;
                let s = self.style.red(&format!(
                    "c{conn}: the {} MTA's octets stop framing as TPKTs at offset {at} ({error}); relayed as read from here, no fault applies",
                    crate::observe::side(from).name()
                ));
                self.line(&s);
            }
        }
    }

    /// Time passed: anomalies that only time reveals (a please left
    /// unanswered by an idle holder) are shown now, not at the next event.
    pub fn tick(&mut self) {
        for (id, a) in self.engine.tick(super::relay::now()) {
            self.anomaly(id, a.kind, a.frame, a.by, &a.detail);
        }
    }

    /// End of the run: every association is reported.
    pub fn finish(mut self) -> (Totals, Vec<Association>, usize, Option<std::io::Error>) {
        let Observer { engine, .. } = &mut self;
        let placeholder = Engine::new(Settings::default(), Box::new(|_| {}) as Box<dyn FnMut(Association)>);
        let summary = std::mem::replace(engine, placeholder).finish();
        self.flush_rows(u64::MAX);
        self.totals.malformed = self.totals.malformed.max(summary.malformed);
        let mut err = self.rec.error.take();
        if let Some(w) = self.rec.out.take() {
            if let Err(e) = w.into_inner().and_then(|mut b| b.flush()) {
                err.get_or_insert(e);
            }
        }
        (self.totals, self.reported, self.not_kept, err)
    }
}
