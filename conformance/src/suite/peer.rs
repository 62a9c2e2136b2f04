//! `rtse serve` as an MTA that does its job on its own: messages it sends
//! ([`Traffic`]: `--send N`, `--send-every`, `--size`), a record of what it
//! delivered and received (one `sent LABEL` / `received LABEL` line each,
//! so an end-to-end test counts exactly-once delivery), when it is done
//! (`--count`, `--exit-after-idle`), and the initiator driver
//! ([`run_connect`], `rtse serve --connect HOST:PORT`): the reference MTA
//! (or a flaw) connects out over RFC 1006, opens the association, sends
//! its queue, asks for and gives the Turn by its policy
//! ([`crate::mta`]), and recovers a lost association by reconnecting to
//! the same address with an RTORQ `recover`, as the machine decides.

use super::iut::MtaHost;
use crate::flaw::Flaw;
use crate::machine::{Action, Apdu, Indication, Input, Output, Phase, Request, Tick, TimerId, TransportEvent};
use crate::mta::MtaInput;
use rtse_codec::presentation::Mode;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Parse `500ms`, `2s`, `1.5s`, `3m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let v: f64 = num.parse().map_err(|_| format!("{s:?}: a duration such as 500ms, 2s or 1m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("{s:?}: unit ms, s or m")),
    };
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What an `rtse serve` MTA sends, and its record of deliveries. Shared by
/// every association of a listener (behind a mutex), owned by an
/// initiator.
#[derive(Debug)]
pub struct Traffic {
    /// Prefix of the MTS identifiers' local part (`NAME-000001`).
    name: String,
    size: u32,
    total: u32,
    every: Option<Duration>,
    created: u32,
    next_at: Option<Instant>,
    /// Messages not yet handed to an MTA (listener: taken by the next
    /// association; given back when an association ends unconfirmed).
    outbox: VecDeque<Apdu>,
    ours: HashSet<Arc<str>>,
    confirmed: HashSet<Arc<str>>,
    received: HashMap<Arc<str>, u32>,
    /// `received` lines expected before done.
    count: Option<u64>,
    /// Where `sent` / `received` lines go (the thread that owns stdout
    /// writes them; `None`: not printed).
    sink: Option<Sender<String>>,
}

impl Traffic {
    /// `total` messages of `size` content octets, all at once or one every
    /// `every`; done after `count` receptions (and every message confirmed).
    #[must_use]
    pub fn new(name: &str, total: u32, size: u32, every: Option<Duration>, count: Option<u64>) -> Self {
        Traffic {
            name: name.to_owned(),
            size: size.min(1 << 24),
            total,
            every,
            created: 0,
            next_at: None,
            outbox: VecDeque::new(),
            ours: HashSet::new(),
            confirmed: HashSet::new(),
            received: HashMap::new(),
            count,
            sink: None,
        }
    }

    /// Send a `sent LABEL` / `received LABEL` line to `tx` per message.
    #[must_use]
    pub fn with_sink(mut self, tx: Sender<String>) -> Self {
        self.sink = Some(tx);
        self
    }

    /// Create the messages that are due into the outbox.
    pub fn tick(&mut self, now: Instant) {
        while self.created < self.total {
            match (self.every, self.next_at) {
                (Some(_), Some(at)) if at > now => break,
                _ => {}
            }
            self.created += 1;
            let id = format!("{}-{:06}", self.name, self.created);
            let content: Vec<u8> = (0..self.size).map(|i| b'a' + (i % 26) as u8).collect();
            let m = Apdu::message(&id, &content);
            self.ours.insert(Arc::clone(&m.label));
            self.outbox.push_back(m);
            if let Some(e) = self.every {
                self.next_at = Some(self.next_at.unwrap_or(now) + e);
            }
        }
    }

    /// When the next message is due (`--send-every`).
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        if self.created < self.total {
            self.next_at
        } else {
            None
        }
    }

    /// The MTA name / identifier prefix.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Take the outbox.
    pub fn take(&mut self) -> Vec<Apdu> {
        self.outbox.drain(..).collect()
    }

    /// Give back messages an association did not get confirmed.
    pub fn give_back<'a>(&mut self, unconfirmed: impl Iterator<Item = &'a Apdu>) {
        for m in unconfirmed {
            if self.ours.contains(&m.label) && !self.confirmed.contains(&m.label) {
                self.outbox.push_back(m.clone());
            }
        }
    }

    /// Record an indication (prints a `sent` or `received` line).
    pub fn indication(&mut self, i: &Indication) {
        let line = match i {
            Indication::TransferCnf { label, ok: true } if self.ours.contains(label) => {
                self.confirmed.insert(Arc::clone(label));
                format!("sent {label}")
            }
            Indication::TransferInd { label, .. } => {
                let l = label.clone().unwrap_or_else(|| Arc::from("<unlabelled>"));
                *self.received.entry(Arc::clone(&l)).or_insert(0) += 1;
                format!("received {l}")
            }
            _ => return,
        };
        if let Some(tx) = &self.sink {
            let _ = tx.send(line);
        }
    }

    /// Distinct messages received.
    #[must_use]
    pub fn received(&self) -> usize {
        self.received.len()
    }

    /// Own messages confirmed.
    #[must_use]
    pub fn confirmed(&self) -> usize {
        self.confirmed.len()
    }

    /// Every message created, handed over and confirmed.
    #[must_use]
    pub fn all_sent(&self) -> bool {
        self.created == self.total && self.confirmed.len() == self.total as usize
    }

    /// `--count` reached and every message confirmed (never without `--count`).
    #[must_use]
    pub fn done(&self) -> bool {
        self.count.is_some_and(|c| self.received.len() as u64 >= c) && self.all_sent()
    }

    /// Whether `--count` was given.
    #[must_use]
    pub fn has_count(&self) -> bool {
        self.count.is_some()
    }
}

/// `rtse serve --connect` settings.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    pub addr: String,
    pub mode: Mode,
    pub flaw: Option<Flaw>,
    /// The MTA name (calling SS-user reference prefix).
    pub name: String,
    /// Exit when nothing arrived for this long.
    pub idle_exit: Option<Duration>,
    /// Delay between open attempts when the association cannot be set up.
    pub reopen: Duration,
    /// The responder gets the Turn when it opens (Token Setting 15).
    pub responder_turn: bool,
}

/// How a `--connect` run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectEnd {
    /// `--count` reached, association closed.
    Done,
    /// `--exit-after-idle` passed; `reached`: `--count` was reached (or not given).
    Idle { reached: bool },
}

struct Initiator {
    addr: SocketAddr,
    host: MtaHost,
    out: Output,
    stream: Option<TcpStream>,
    timers: [Option<Tick>; 2],
    epoch: Instant,
    /// A Connect the driver delays (the last attempt failed < `reopen` ago).
    connect_at: Option<Instant>,
    last_failed_connect: Option<Instant>,
    reopen: Duration,
    last_input: Instant,
    traffic: Traffic,
    buf: Vec<u8>,
}

impl Initiator {
    fn now(&self) -> Tick {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn feed(&mut self, i: MtaInput<'_>) {
        let now = self.now();
        let mut out = std::mem::take(&mut self.out);
        self.host.mta.handle(now, i, &mut out);
        self.out = out;
        self.pump();
    }

    /// Carry out the actions (which may produce more) until none is left.
    fn pump(&mut self) {
        while !self.out.actions.is_empty() {
            let out = std::mem::take(&mut self.out);
            let mut events = Vec::new();
            for a in &out.actions {
                match a {
                    Action::Transmit(t) => {
                        if let Some(s) = self.stream.as_mut() {
                            if s.write_all(out.bytes(t)).is_err() {
                                // The peer is gone: the transport is lost.
                                self.stream = None;
                                events.push(TransportEvent::Lost);
                            }
                        }
                    }
                    Action::Disconnect => {
                        if let Some(s) = self.stream.take() {
                            let _ = s.shutdown(Shutdown::Both);
                        }
                        // No event follows a Disconnect (machine contract).
                        events.retain(|e| *e != TransportEvent::Lost);
                    }
                    Action::Connect => {
                        let at = self.last_failed_connect.map(|f| f + self.reopen);
                        match at {
                            Some(at) if at > Instant::now() => self.connect_at = Some(at),
                            _ => events.push(self.connect()),
                        }
                    }
                    Action::SetTimer(id, at) => self.timers[*id as usize] = Some(*at),
                    Action::CancelTimer(id) => self.timers[*id as usize] = None,
                    Action::Indication(i) => self.traffic.indication(i),
                }
            }
            self.out = out;
            self.out.clear();
            let now = self.now();
            for e in events {
                let mut out = std::mem::take(&mut self.out);
                self.host.mta.handle(now, MtaInput::Machine(Input::Transport(e)), &mut out);
                self.out = out;
            }
        }
    }

    fn connect(&mut self) -> TransportEvent {
        match TcpStream::connect_timeout(&self.addr, Duration::from_secs(3)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
                self.stream = Some(s);
                self.last_failed_connect = None;
                TransportEvent::Connected
            }
            Err(e) => {
                eprintln!("rtse serve: connect {}: {e}", self.addr);
                self.last_failed_connect = Some(Instant::now());
                TransportEvent::Lost
            }
        }
    }

    fn submit_due(&mut self) {
        self.traffic.tick(Instant::now());
        for m in self.traffic.take() {
            self.feed(MtaInput::Submit(m));
        }
    }

    /// Read for up to `wait`; feeds bytes or the loss.
    fn read(&mut self, wait: Duration) {
        let Some(s) = self.stream.as_mut() else {
            std::thread::sleep(wait);
            return;
        };
        let _ = s.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        match s.read(&mut self.buf) {
            Ok(0) => {
                self.stream = None;
                self.feed(MtaInput::Machine(Input::Transport(TransportEvent::Lost)));
            }
            Ok(n) => {
                self.last_input = Instant::now();
                let bytes = self.buf[..n].to_vec();
                let now = self.now();
                let mut out = std::mem::take(&mut self.out);
                self.host.received(now, &bytes, &mut out);
                self.out = out;
                self.pump();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => {
                self.stream = None;
                self.feed(MtaInput::Machine(Input::Transport(TransportEvent::Lost)));
            }
        }
    }

    fn timers_due(&mut self) {
        let now = self.now();
        for t in TimerId::ALL {
            if self.timers[t as usize].is_some_and(|at| at <= now) {
                self.timers[t as usize] = None;
                self.feed(MtaInput::Machine(Input::Timer(t)));
            }
        }
        if self.connect_at.is_some_and(|at| at <= Instant::now()) {
            self.connect_at = None;
            let e = self.connect();
            self.feed(MtaInput::Machine(Input::Transport(e)));
        }
    }

    fn wait(&self) -> Duration {
        let now = self.now();
        let mut w = Duration::from_millis(50);
        if let Some(t) = self.timers.iter().flatten().min() {
            w = w.min(Duration::from_nanos(t.saturating_sub(now)));
        }
        if let Some(at) = self.connect_at {
            w = w.min(at.saturating_duration_since(Instant::now()));
        }
        if let Some(at) = self.traffic.next_due() {
            w = w.min(at.saturating_duration_since(Instant::now()));
        }
        w.max(Duration::from_millis(1))
    }
}

/// Write the lines received so far, flushed.
pub fn drain_lines(rx: &Receiver<String>, out: &mut dyn Write) {
    let mut any = false;
    while let Ok(l) = rx.try_recv() {
        let _ = writeln!(out, "{l}");
        any = true;
    }
    if any {
        let _ = out.flush();
    }
}

/// Run the reference MTA (or a flaw) as an association-initiator towards
/// `cfg.addr` until `traffic` is done (then RT-CLOSE) or nothing arrives
/// for `cfg.idle_exit`; its `sent` / `received` lines go to `out`.
pub fn run_connect(cfg: &ConnectConfig, traffic: Traffic, out: &mut dyn Write) -> Result<ConnectEnd, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let traffic = traffic.with_sink(tx);
    let r = connect_loop(cfg, traffic, &rx, out);
    drain_lines(&rx, out);
    r
}

fn connect_loop(
    cfg: &ConnectConfig,
    traffic: Traffic,
    rx: &Receiver<String>,
    lines: &mut dyn Write,
) -> Result<ConnectEnd, String> {
    let addr = cfg
        .addr
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", cfg.addr))?
        .next()
        .ok_or_else(|| format!("{}: no address", cfg.addr))?;
    let mut mcfg = MtaHost::config(&cfg.name, cfg.mode, cfg.flaw, true);
    // `--send` submits its messages at once: no fresh association per 50
    // queued (the backlog behaviour of crate::mta is for the simulator).
    mcfg.backlog_threshold = usize::MAX;
    if cfg.responder_turn {
        mcfg.machine.initial_turn = crate::machine::Role::Responder;
    }
    let mut ini = Initiator {
        addr,
        host: MtaHost::new(mcfg),
        out: Output::new(),
        stream: None,
        timers: [None; 2],
        epoch: Instant::now(),
        connect_at: None,
        last_failed_connect: None,
        reopen: cfg.reopen,
        last_input: Instant::now(),
        traffic,
        buf: vec![0; 64 * 1024],
    };
    let mut last_open: Option<Instant> = None;
    let mut closing: Option<Instant> = None;
    let mut close_please_at: Option<Instant> = None;
    loop {
        drain_lines(rx, lines);
        ini.submit_due();
        let phase = ini.host.mta.machine().phase();
        let done = ini.traffic.done();
        if done {
            let started = *closing.get_or_insert_with(Instant::now);
            match phase {
                Phase::Idle => return Ok(ConnectEnd::Done),
                Phase::Open => {
                    let m = ini.host.mta.machine();
                    if m.holds_turn() && m.sending().is_none() && !m.receiving() {
                        ini.feed(MtaInput::Machine(Input::Request(Request::Close)));
                    } else if !m.holds_turn()
                        && !m.gtc_pending()
                        && close_please_at.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                    {
                        // Priority 0: the Turn is wanted to close (X.228 7.5).
                        close_please_at = Some(Instant::now());
                        ini.feed(MtaInput::Machine(Input::Request(Request::TurnPlease(0))));
                    }
                }
                _ => {}
            }
            if started.elapsed() > Duration::from_secs(5) {
                eprintln!("rtse serve: done, but the association did not close within 5 s");
                return Ok(ConnectEnd::Done);
            }
        } else if phase == Phase::Idle
            && ini.connect_at.is_none()
            && last_open.is_none_or(|t| t.elapsed() >= cfg.reopen)
        {
            // No association (at start, or a loss that was not recovered):
            // open one, to send and to receive.
            last_open = Some(Instant::now());
            ini.feed(MtaInput::Machine(Input::Request(Request::Open)));
        }
        if let Some(idle) = cfg.idle_exit {
            if ini.last_input.elapsed() >= idle {
                let reached = !ini.traffic.has_count() || done;
                if let Some(s) = ini.stream.take() {
                    let _ = s.shutdown(Shutdown::Both);
                }
                return Ok(ConnectEnd::Idle { reached });
            }
        }
        let w = ini.wait();
        ini.read(w);
        ini.timers_due();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn traffic_labels_are_distinct_and_paced() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut t = Traffic::new("C", 3, 10, Some(Duration::from_secs(3600)), Some(0)).with_sink(tx);
        let now = Instant::now();
        t.tick(now);
        let first = t.take();
        assert_eq!(first.len(), 1, "one at start, the next an hour later");
        t.tick(now + Duration::from_secs(3600));
        let second = t.take();
        assert_eq!(second.len(), 1);
        assert_ne!(first[0].label, second[0].label);
        assert!(first[0].label.ends_with(";C-000001"), "{}", first[0].label);
        assert!(!t.all_sent());
        t.indication(&Indication::TransferCnf { label: Arc::clone(&first[0].label), ok: true });
        t.give_back([first[0].clone(), second[0].clone()].iter());
        assert_eq!(t.take().len(), 1, "a confirmed message is not given back");
        let mut out = Vec::new();
        drain_lines(&rx, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "sent /C=GB/A= /P=ACME/;C-000001\n");
    }
}
