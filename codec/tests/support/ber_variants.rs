//! Test support: rewrite BER into the other encodings a real peer may send
//! for the same value, and bring such encodings back to one canonical form.
//!
//! Use from an integration test with
//! `#[path = "support/ber_variants.rs"] mod ber_variants;`.
//!
//! * [`parse`] / [`encode`]: a BER byte string <-> a tree of [`Node`]s
//!   (identifier octets kept as sent; primitive content; children).
//! * [`Style`]: how [`encode`] writes lengths (indefinite for every
//!   constructed value; non-minimal long-form definite lengths).
//! * [`Node::split`]: a primitive string sent as a constructed string of
//!   `OCTET STRING` segments (X.690 8.7.3).
//! * [`Node::walk`]: visit every node with the identifier octets of its
//!   ancestors (its "path"), e.g. to reverse the members of a SET or to
//!   freeze a subtree ([`Node::freeze`]) that another layer owns, so it is
//!   kept byte for byte.
//! * [`variants`]: the standard set of rewrites of a value (indefinite
//!   lengths, long-form lengths, reversed SETs, split strings, all at once),
//!   with a caller's rule for which nodes are opaque (kept verbatim) and
//!   which context-tagged primitives are strings.
//! * [`canonical`]: definite minimal lengths, UNIVERSAL constructed strings
//!   joined, members of every UNIVERSAL SET (`31`) sorted: two encodings that
//!   differ only by the rewrites above have the same canonical form.
//!
//! It panics on malformed input: it is meant for known-good test vectors.
#![allow(dead_code)]

/// One TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Identifier octets as read (low- or high-tag-number form).
    pub id: Vec<u8>,
    pub body: Body,
    /// The octets this node was parsed from (empty for a node built by
    /// hand); [`Node::freeze`] keeps them.
    pub orig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Content octets of a primitive value.
    Prim(Vec<u8>),
    /// Members of a constructed value.
    Cons(Vec<Node>),
    /// A whole TLV written back exactly as it is (see [`Node::freeze`]).
    Verbatim(Vec<u8>),
}

/// How [`encode`] writes lengths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Every constructed value with the indefinite length `80 .. 00 00`.
    pub indefinite: bool,
    /// Every definite length in long form with more octets than needed
    /// (`82 00 05` for 5).
    pub long_lengths: bool,
}

impl Style {
    pub const CANONICAL: Style = Style { indefinite: false, long_lengths: false };
    pub const INDEFINITE: Style = Style { indefinite: true, long_lengths: false };
    pub const LONG: Style = Style { indefinite: false, long_lengths: true };
}

/// Header of the TLV at the start of `b`: (identifier octets, length
/// (None = indefinite), header length).
fn header(b: &[u8]) -> (Vec<u8>, Option<usize>, usize) {
    let mut i = 1;
    if b[0] & 0x1f == 0x1f {
        while b[i] & 0x80 != 0 {
            i += 1;
        }
        i += 1;
    }
    let id = b[..i].to_vec();
    let l0 = b[i];
    i += 1;
    let len = if l0 < 0x80 {
        Some(l0 as usize)
    } else if l0 == 0x80 {
        None
    } else {
        let n = (l0 & 0x7f) as usize;
        let mut v = 0usize;
        for &x in &b[i..i + n] {
            v = v << 8 | x as usize;
        }
        i += n;
        Some(v)
    };
    (id, len, i)
}

/// Parse one TLV; returns it and the number of octets it took.
fn parse_tlv(b: &[u8]) -> (Node, usize) {
    let (id, len, hl) = header(b);
    let constructed = id[0] & 0x20 != 0;
    match len {
        Some(n) => {
            let content = &b[hl..hl + n];
            let body = if constructed { Body::Cons(parse(content)) } else { Body::Prim(content.to_vec()) };
            let orig = b[..hl + n].to_vec();
            (Node { id, body, orig }, hl + n)
        }
        None => {
            assert!(constructed, "indefinite length on a primitive");
            let mut kids = Vec::new();
            let mut pos = hl;
            while !(b[pos] == 0 && b[pos + 1] == 0) {
                let (k, used) = parse_tlv(&b[pos..]);
                kids.push(k);
                pos += used;
            }
            let orig = b[..pos + 2].to_vec();
            (Node { id, body: Body::Cons(kids), orig }, pos + 2)
        }
    }
}

/// Parse consecutive TLVs filling `b`.
pub fn parse(b: &[u8]) -> Vec<Node> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let (n, used) = parse_tlv(&b[pos..]);
        out.push(n);
        pos += used;
    }
    out
}

/// Parse exactly one TLV filling `b`.
pub fn parse_one(b: &[u8]) -> Node {
    let mut v = parse(b);
    assert_eq!(v.len(), 1, "expected one TLV");
    v.remove(0)
}

fn write_len(out: &mut Vec<u8>, n: usize, style: Style) {
    if style.long_lengths {
        if n <= 0xffff {
            out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
        } else {
            out.push(0x84);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    } else if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn encode_node(n: &Node, style: Style, out: &mut Vec<u8>) {
    match &n.body {
        Body::Verbatim(v) => out.extend_from_slice(v),
        Body::Prim(c) => {
            out.extend_from_slice(&n.id);
            write_len(out, c.len(), style);
            out.extend_from_slice(c);
        }
        Body::Cons(kids) => {
            out.extend_from_slice(&n.id);
            if style.indefinite {
                out.push(0x80);
                for k in kids {
                    encode_node(k, style, out);
                }
                out.extend_from_slice(&[0, 0]);
            } else {
                let mut c = Vec::new();
                for k in kids {
                    encode_node(k, style, &mut c);
                }
                write_len(out, c.len(), style);
                out.extend_from_slice(&c);
            }
        }
    }
}

/// Encode `nodes` in `style`.
pub fn encode(nodes: &[Node], style: Style) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nodes {
        encode_node(n, style, &mut out);
    }
    out
}

impl Node {
    pub fn new(id: Vec<u8>, body: Body) -> Node {
        Node { id, body, orig: Vec::new() }
    }
    pub fn prim(id: u8, content: &[u8]) -> Node {
        Node::new(vec![id], Body::Prim(content.to_vec()))
    }
    pub fn cons(id: u8, kids: Vec<Node>) -> Node {
        Node::new(vec![id], Body::Cons(kids))
    }
    /// A whole TLV written back as given.
    pub fn verbatim(tlv: &[u8]) -> Node {
        let (id, _, _) = header(tlv);
        Node::new(id, Body::Verbatim(tlv.to_vec()))
    }
    /// First identifier octet.
    pub fn id0(&self) -> u8 {
        self.id[0]
    }
    pub fn is_constructed(&self) -> bool {
        self.id[0] & 0x20 != 0
    }
    pub fn encode(&self, style: Style) -> Vec<u8> {
        let mut out = Vec::new();
        encode_node(self, style, &mut out);
        out
    }
    /// Members (panics unless constructed and not frozen).
    pub fn kids(&mut self) -> &mut Vec<Node> {
        match &mut self.body {
            Body::Cons(k) => k,
            _ => panic!("not a constructed node: {:02x?}", self.id),
        }
    }
    /// The node at `path` (indexes of members, outermost first).
    pub fn at(&mut self, path: &[usize]) -> &mut Node {
        let mut n = self;
        for &i in path {
            n = &mut n.kids()[i];
        }
        n
    }
    /// Keep this subtree byte for byte as it was parsed (for values another
    /// layer owns: later rewrites must not touch them). A node built by hand
    /// is kept in its canonical encoding.
    pub fn freeze(&mut self) {
        let b = if self.orig.is_empty() { self.encode(Style::CANONICAL) } else { self.orig.clone() };
        self.body = Body::Verbatim(b);
    }
    /// Send this primitive string as a constructed string of `pieces`
    /// segments with identifier `seg_id` (`04` for OCTET STRING based
    /// types). An empty string becomes a constructed string with no segment.
    pub fn split(&mut self, seg_id: u8, pieces: usize) {
        let Body::Prim(c) = &self.body else { panic!("split of a non-primitive") };
        let c = c.clone();
        let pieces = pieces.max(1);
        let step = c.len().div_ceil(pieces).max(1);
        let kids = c.chunks(step).map(|ch| Node::prim(seg_id, ch)).collect();
        self.id[0] |= 0x20;
        self.body = Body::Cons(kids);
    }
    /// Visit every node (pre-order) with the first identifier octets of
    /// its ancestors; `f` returns whether to descend into it.
    pub fn walk(&mut self, f: &mut dyn FnMut(&[u8], &mut Node) -> bool) {
        let mut path = Vec::new();
        walk_in(self, &mut path, f);
    }
}

fn walk_in(n: &mut Node, path: &mut Vec<u8>, f: &mut dyn FnMut(&[u8], &mut Node) -> bool) {
    if !f(path, n) {
        return;
    }
    let id0 = n.id[0];
    if let Body::Cons(kids) = &mut n.body {
        path.push(id0);
        for k in kids {
            walk_in(k, path, f);
        }
        path.pop();
    }
}

/// Walk every node of a list.
pub fn walk_all(nodes: &mut [Node], f: &mut dyn FnMut(&[u8], &mut Node) -> bool) {
    for n in nodes {
        n.walk(f);
    }
}

/// UNIVERSAL string types whose constructed form [`canonical`] joins
/// (OCTET STRING, ObjectDescriptor, the character strings; not BIT STRING,
/// whose segments carry their own unused-bits octet).
fn is_universal_string(id0: u8) -> bool {
    id0 & 0xc0 == 0 && matches!(id0 & 0x1f, 4 | 7 | 12 | 18..=22 | 25..=30)
}

fn join(n: &Node, out: &mut Vec<u8>) {
    match &n.body {
        Body::Prim(c) => out.extend_from_slice(c),
        Body::Cons(k) => k.iter().for_each(|k| join(k, out)),
        Body::Verbatim(v) => join(&parse_one(v), out),
    }
}

fn canon_node(n: &Node) -> Node {
    match &n.body {
        Body::Verbatim(v) => canon_node(&parse_one(v)),
        Body::Prim(_) => n.clone(),
        Body::Cons(kids) => {
            if is_universal_string(n.id[0]) {
                let mut c = Vec::new();
                join(n, &mut c);
                return Node::new(vec![n.id[0] & !0x20], Body::Prim(c));
            }
            let mut kids: Vec<Node> = kids.iter().map(canon_node).collect();
            if n.id == [0x31] {
                kids.sort_by_key(|k| k.encode(Style::CANONICAL));
            }
            Node::new(n.id.clone(), Body::Cons(kids))
        }
    }
}

/// Canonical form of `b` (see the module doc).
pub fn canonical(b: &[u8]) -> Vec<u8> {
    let nodes: Vec<Node> = parse(b).iter().map(canon_node).collect();
    encode(&nodes, Style::CANONICAL)
}

/// Rules for [`variants`].
pub struct Rules<'r> {
    /// Whether the node (given its ancestors' first identifier octets and
    /// itself) belongs to another layer: it is kept verbatim.
    pub opaque: &'r dyn Fn(&[u8], &Node) -> bool,
    /// Whether a primitive node is a (possibly implicitly tagged) string
    /// that may be sent constructed. UNIVERSAL OCTET STRINGs (`04`) always are.
    pub string: &'r dyn Fn(&[u8], &Node) -> bool,
}

impl Rules<'_> {
    /// Nothing opaque; only UNIVERSAL OCTET STRINGs are strings.
    pub const ALL: Rules<'static> = Rules { opaque: &|_, _| false, string: &|_, _| false };
}

fn prepared(b: &[u8], rules: &Rules<'_>, reverse_sets: bool, split: bool) -> Vec<Node> {
    let mut nodes = parse(b);
    walk_all(&mut nodes, &mut |path, n| {
        if (rules.opaque)(path, n) {
            n.freeze();
            return false;
        }
        if reverse_sets && n.id == [0x31] {
            n.kids().reverse();
        }
        if split && !n.is_constructed() && (n.id == [0x04] || (rules.string)(path, n)) {
            n.split(0x04, 2);
            return false;
        }
        true
    });
    nodes
}

/// The standard rewrites of `b`, each a valid
/// BER encoding of the same value: `(name, bytes)`.
pub fn variants(b: &[u8], rules: &Rules<'_>) -> Vec<(&'static str, Vec<u8>)> {
    let v = |reverse_sets, split, style| encode(&prepared(b, rules, reverse_sets, split), style);
    vec![
        ("indefinite", v(false, false, Style::INDEFINITE)),
        ("long-lengths", v(false, false, Style::LONG)),
        ("sets-reversed", v(true, false, Style::CANONICAL)),
        ("strings-split", v(false, true, Style::CANONICAL)),
        ("all-indefinite", v(true, true, Style::INDEFINITE)),
        ("all-long", v(true, true, Style::LONG)),
    ]
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn round_trip_and_canonical() {
        let b = [0x31, 0x08, 0xa0, 0x03, 0x80, 0x01, 0x01, 0x04, 0x01, 0x61];
        assert_eq!(encode(&parse(&b), Style::CANONICAL), b);
        for (name, v) in variants(&b, &Rules::ALL) {
            assert_ne!(v, b, "{name}");
            assert_eq!(canonical(&v), canonical(&b), "{name}");
        }
    }
}
