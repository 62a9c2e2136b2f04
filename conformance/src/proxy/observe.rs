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
use crate::fx::FxBuild;
use crate::timeline::text::{clock, push_clock, Style, DIM, RED};
use crate::timeline::{AnomalyEntry, Association, Engine, Event, Settings};
use crate::tracker::{AnomalyKind, Side};
use rtse_codec::capture::stacks::CaptureItem;
use rtse_codec::capture::write::{FrameSink, PcapngWriter, TcpConversation};
use rtse_codec::capture::{CloseHow, ConnKey, Direction, Timestamp};
use rtse_codec::stack::{AssociationDecoder, Sender};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
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

/// The live output, shared by the observer and the engine's row hook: the
/// hook prints each row (and counts it) as the engine records it, so no
/// row is copied to be printed later, and in quiet mode a row without an
/// anomaly costs nothing here. Lines collect in `text`; the observer moves
/// them to its (buffered) output after each message, and flushes that when
/// it is about to wait (see [`Observer::flush`]).
struct Printer {
    text: String,
    style: Style,
    /// Print every row (else only faults, anomalies, connections).
    verbose: bool,
    /// The connection whose item the engine is handling.
    conn: u64,
    totals: Totals,
    /// (assoc, kind, frame) already printed live (FxHash: our own numbers,
    /// looked up once per anomaly a row raises).
    printed: HashSet<(u32, AnomalyKind, u64), FxBuild>,
    /// The start of the last row line printed (time to sender) and what it
    /// shows: the rows of one read share it (the TPKTs of a bulk transfer,
    /// eight or more per read), and formatting it was most of a line's cost.
    prefix: String,
    prefix_of: Option<RowKey>,
}

/// What the start of a row line shows: time, connection, association,
/// frame, sender.
type RowKey = (Option<Timestamp>, u64, u32, u64, Side);

impl Printer {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// `s` in the style `code`, as a line.
    fn paint_line(&mut self, code: &str, s: &str) {
        self.style.paint_into(&mut self.text, code, s);
        self.text.push('\n');
    }

    fn row(&mut self, id: u32, ev: &Event, anomalies: &[AnomalyEntry]) {
        self.totals.rows += 1;
        if ev.pdus.contains(&"MALFORMED") {
            self.totals.malformed += 1;
        }
        if self.verbose || !anomalies.is_empty() {
            // `{time}  c{conn:<3} #{id:<3} f{frame:<6} {from:<9} {pdus:<14} -> {holder}  {note}`,
            // written in place.
            let key = (ev.time, self.conn, id, ev.frame, ev.from);
            if self.prefix_of != Some(key) {
                let p = &mut self.prefix;
                p.clear();
                if let Some(time) = ev.time {
                    push_clock(p, time);
                }
                let _ = write!(p, "  c{:<3} #{id:<3} f{:<6} {:<9} ", self.conn, ev.frame, ev.from.name());
                self.prefix_of = Some(key);
            }
            let t = &mut self.text;
            t.push_str(&self.prefix);
            let start = t.len();
            for (i, p) in ev.pdus.iter().enumerate() {
                if i > 0 {
                    t.push(',');
                }
                t.push_str(p);
            }
            // PDU names are ASCII: octets are characters.
            let width = t.len() - start;
            t.extend(std::iter::repeat_n(' ', 14usize.saturating_sub(width)));
            t.push_str(" -> ");
            self.style.paint_into(t, Style::holder_code(ev.turn), ev.turn.name());
            if !ev.note.is_empty() {
                t.push_str("  ");
                self.style.paint_into(t, DIM, &ev.note);
            }
            t.push('\n');
        }
        for a in anomalies {
            self.anomaly(id, a.kind, a.frame, a.by, &a.detail);
        }
    }

    fn anomaly(&mut self, id: u32, kind: AnomalyKind, frame: u64, by: Option<Side>, detail: &str) {
        if !self.printed.insert((id, kind, frame)) {
            return;
        }
        *self.totals.anomalies.entry(kind.name()).or_default() += 1;
        self.totals.anomaly_list.push((id, kind, frame, detail.to_string()));
        let by = by.map(|s| format!(" (by the {})", s.name())).unwrap_or_default();
        self.paint_line(RED, &format!("  !! #{id} {}{by} at frame {frame}: {detail}", kind.name()));
    }
}

/// The style of fault lines (see [`Style`]).
const YELLOW: &str = "1;33";

/// The observer (see the [module docs](self)).
pub struct Observer<'o> {
    engine: Engine<Box<dyn FnMut(Association)>>,
    printer: Rc<RefCell<Printer>>,
    reports: Rc<RefCell<Vec<Association>>>,
    conns: HashMap<u64, Conn>,
    rec: Recorder,
    out: &'o mut dyn Write,
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
        let printer = Rc::new(RefCell::new(Printer {
            text: String::new(),
            style,
            verbose: true,
            conn: 0,
            totals: Totals::default(),
            printed: HashSet::default(),
            prefix: String::new(),
            prefix_of: None,
        }));
        let reports: Rc<RefCell<Vec<Association>>> = Rc::default();
        let r2 = Rc::clone(&reports);
        let emit: Box<dyn FnMut(Association)> = Box::new(move |a| r2.borrow_mut().push(a));
        let mut engine = Engine::new(settings, emit);
        let p2 = Rc::clone(&printer);
        engine.set_row_hook(Box::new(move |id, ev, anomalies| p2.borrow_mut().row(id, ev, anomalies)));
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
            printer,
            reports,
            conns: HashMap::new(),
            rec: Recorder { out: out_w, frames: 0, error: None },
            out,
            reported: Vec::new(),
            keep: crate::timeline::SVG_MAX_ASSOCIATIONS,
            not_kept: 0,
            linked: HashSet::new(),
        })
    }

    /// Print every row (the default), or only faults, anomalies and
    /// connections (`-q`).
    pub fn set_verbose_rows(&mut self, verbose: bool) {
        self.printer.borrow_mut().verbose = verbose;
    }

    /// Write the lines printed so far to the output: after each message
    /// they are only buffered, so that a burst of messages costs one write
    /// to the terminal, not one per line. The caller flushes whenever it is
    /// about to wait for the pumps (and [`finish`](Self::finish) does).
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    /// Move what the printer holds into the (buffered) output.
    fn drain_text(&mut self) {
        let mut p = self.printer.borrow_mut();
        if !p.text.is_empty() {
            let _ = self.out.write_all(p.text.as_bytes());
            p.text.clear();
        }
    }

    /// Print what the reports add (anomalies judged at the end, recovery
    /// links) and keep them for JSON/SVG.
    fn settled_reports(&mut self) {
        let reports = std::mem::take(&mut *self.reports.borrow_mut());
        for a in reports {
            let mut p = self.printer.borrow_mut();
            p.totals.associations += 1;
            if let Some(r) = a.recovers {
                p.totals.recoveries += 1;
                if self.linked.insert(a.id) {
                    p.line(&format!("   #{} recovered #{r}", a.id));
                }
            }
            for x in &a.anomalies {
                p.anomaly(a.id, x.kind, x.frame, x.by, &x.detail);
            }
            drop(p);
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
        let mut p = self.printer.borrow_mut();
        p.totals.faults.push(FaultRecord {
            conn,
            frame,
            from: side,
            effect: note.effect.to_string(),
            why: note.why.clone(),
            pdus: note.pdus.clone(),
        });
        p.paint_line(
            YELLOW,
            &format!(
                "{}  c{conn:<3} FAULT f{frame}: {what} from the {} [{}]",
                clock(super::relay::now()),
                side.name(),
                note.why
            ),
        );
    }

    fn totals(&self) -> std::cell::RefMut<'_, Totals> {
        std::cell::RefMut::map(self.printer.borrow_mut(), |p| &mut p.totals)
    }

    /// Handle one message of the pumps.
    pub fn handle(&mut self, m: Msg) {
        self.message(m);
        self.drain_text();
    }

    fn message(&mut self, m: Msg) {
        match m {
            Msg::Open { conn, client, listen, local, upstream, time } => {
                self.totals().connections += 1;
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
                self.printer.borrow_mut().conn = conn;
                self.engine.item(CaptureItem::Open {
                    conn,
                    key: ConnKey { client, server: upstream },
                    frame,
                    time,
                    mid_stream: false,
                });
                let mut p = self.printer.borrow_mut();
                if p.verbose {
                    p.line(&format!("{}  c{conn:<3} open {client} -> {listen} | {local} -> {upstream}", clock(time)));
                }
                drop(p);
                self.settled_reports();
            }
            Msg::ConnectFailed { conn, client, error } => {
                let mut p = self.printer.borrow_mut();
                p.totals.connect_failures += 1;
                p.paint_line(RED, &format!("c{conn} from {client}: upstream MTA unreachable: {error}"));
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
                c.offset[inb] += fwd.len() as u64;
                let mut p = self.printer.borrow_mut();
                p.totals.octets[inb] += fwd.len() as u64;
                p.conn = conn;
                drop(p);
                // Printed before the rows this data produces (as they are
                // recorded).
                if let Some(note) = &fault {
                    self.fault_line(conn, in_frame, from, note);
                }
                let Some(c) = self.conns.get_mut(&conn) else { return };
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
                self.settled_reports();
            }
            Msg::Forged { conn, bytes, time } => {
                let Some(c) = self.conns.get_mut(&conn) else { return };
                self.rec.leg(&mut c.legs, 1, time, 1, |t| {
                    t.send(Direction::ToServer, &bytes);
                });
                let f = self.rec.leg(&mut c.legs, 0, time, 1, |t| {
                    t.send(Direction::ToClient, &bytes);
                });
                self.printer.borrow_mut().paint_line(
                    YELLOW,
                    &format!("{}  c{conn:<3} FAULT f{f}: forged session AB sent to both MTAs", clock(time)),
                );
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
                // Printed before the rows the close produces.
                let mut p = self.printer.borrow_mut();
                if p.verbose {
                    p.line(&format!("{}  c{conn:<3} closed ({}{reason})", clock(time), if rst { "RST: " } else { "" }));
                }
                p.conn = conn;
                drop(p);
                self.engine.item(CaptureItem::Close { conn, frame, time, how });
                self.settled_reports();
            }
            Msg::Unframed { conn, from, at, error } => {
                let mut p = self.printer.borrow_mut();
                p.totals.unframed += 1;
                p.paint_line(RED, &format!(
                    "c{conn}: the {} MTA's octets stop framing as TPKTs at offset {at} ({error}); relayed as read from here, no fault applies",
                    crate::observe::side(from).name()
                ));
            }
        }
    }

    /// Time passed: anomalies that only time reveals (a please left
    /// unanswered by an idle holder) are shown now, not at the next event.
    pub fn tick(&mut self) {
        for (id, a) in self.engine.tick(super::relay::now()) {
            self.printer.borrow_mut().anomaly(id, a.kind, a.frame, a.by, &a.detail);
        }
        self.drain_text();
    }

    /// End of the run: every association is reported.
    pub fn finish(mut self) -> (Totals, Vec<Association>, usize, Option<std::io::Error>) {
        self.printer.borrow_mut().conn = u64::MAX;
        let placeholder = Engine::new(Settings::default(), Box::new(|_| {}) as Box<dyn FnMut(Association)>);
        let summary = std::mem::replace(&mut self.engine, placeholder).finish();
        self.settled_reports();
        self.drain_text();
        self.flush();
        let mut totals = std::mem::take(&mut *self.totals());
        totals.malformed = totals.malformed.max(summary.malformed);
        let mut err = self.rec.error.take();
        if let Some(w) = self.rec.out.take() {
            if let Err(e) = w.into_inner().and_then(|mut b| b.flush()) {
                err.get_or_insert(e);
            }
        }
        (totals, self.reported, self.not_kept, err)
    }
}
