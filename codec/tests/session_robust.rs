//! Session codec: targeted error offsets, length escapes, unknown
//! parameters, real-capture TSDUs, the lenient repairs, and robustness
//! (every truncation and single-byte corruption of every example TSDU).

use pretty_assertions::assert_eq;
use rtse_codec::hex;
use rtse_codec::session::*;
use rtse_codec::{ErrorKind, Found};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

fn err(b: &[u8]) -> String {
    parse_tsdu(b).expect_err("should fail").to_string()
}

fn reemit(t: &Tsdu<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    emit_tsdu(t, &mut out);
    assert_eq!(out.len(), encoded_len_tsdu(t));
    out
}

fn names(t: &Tsdu<'_>) -> Vec<&'static str> {
    t.iter().map(Spdu::name).collect()
}

// Real TSDUs from /work/shared/captures (see SOURCES.md).
/// x400-ping-refuse.pcap: RF + CPR-PPDU (reason 2 + user data in PI 50).
const RF_PING: &str = "0c7d011d090a0408506572636976616c0b0f170d3035313030313134343435345a110101140202493255023052a51b30078001008102510130078001008102510130078001008102510161333031020101a02c612aa106060456000106a203020101a305a103020101be14281206025101020103a009b207a105b203020102";
/// x400-ping-success.pcap: AC with an empty responding SSEL (`34 00`).
const AC_PING: &str = "0eb1011d090a0408506572636976616c0b0f170d3035313030313134343835325a05091301001601021a0100140202493400c17f317da003800101a276a51b30078001008102510130078001008102510130078001008102510161573055020101a050614ea106060456000106a203020100a305a103020100be38283606025101020103a02db12b80013fa226a024b122a12080146775696e65766572652e736d68732e636f2e756ba10816066d65726c696e";
/// x400-ping-success.pcap: FN and DN.
const FN_PING: &str = "0913110101c10e610c300a020101a0056203800100";
const DN_PING: &str = "0a10c10e610c300a020101a0056303800100";
/// p772-transfer-success.pcap: the responder's PT + AEA, the sender's GT + AE.
const PT_AEA_P772: &str = "02002a032a0131";
const GT_AE_P772: &str = "010029032a0131";
/// iec / iec61850_*.pcap: the malformed AC (PI 06 in the Connect/Accept
/// Item, `c1 00` then the CPA-PPDU, LI one octet too long).
const AC_IEC: &str = "0e89050613010006010214020002c1003178a003800100a271830400000001a512300780010081025201300780010081025101880206006151304f020101a04a614880020780a107060528ca220203a203020100a305a103020100a40606042bce0f02a503020117be20281e020103a019a917800100810100820100830100a409800100810100820100";

#[test]
fn targeted_error_offsets() {
    assert_eq!(err(&[]), "session @ 0x0: expected SPDU identifier, found end of input");
    assert_eq!(err(&[0x0d]), "session @ 0x1: expected length indicator, found end of input");
    assert_eq!(err(&[0x0d, 0xff, 0x01]), "session @ 0x3: expected 3-octet length indicator, found end of input");
    assert_eq!(err(&[0x03, 0x00]), "session @ 0x0: expected SPDU identifier, found 0x03");
    // The input ends inside a unit.
    assert_eq!(err(&[0x0d, 0x02, 0x14]), "session @ 0x3: expected parameter length, found end of input");
    assert_eq!(err(&[0x0d, 0x05, 0x14, 0x02]), "session @ 0x4: expected parameter value, found end of input");
    // The parameter field (LI) ends inside a unit, the input does not.
    assert_eq!(
        err(&[0x0d, 0x01, 0x05, 0x00]),
        "session @ 0x3: expected parameter length, found end of parameter field"
    );
    assert_eq!(
        err(&[0x0d, 0x03, 0x05, 0x05, 0x13, 0x01, 0x00]),
        "session @ 0x3: expected parameter value within the parameter field, found length 5"
    );
    // Inside a PGI, offsets are still counted from the TSDU start.
    assert_eq!(
        err(&[0x0d, 0x05, 0x05, 0x03, 0x16, 0x05, 0x02]),
        "session @ 0x5: expected parameter value within the parameter field, found length 5"
    );
    assert_eq!(
        err(&[0x0d, 0x04, 0x05, 0x02, 0x16, 0x00]),
        "session @ 0x4: expected 1-octet Version Number, found length 0"
    );
    // Fixed sizes, serial numbers, mandatory and repeated parameters.
    assert_eq!(err(&h("0204100201 01")), "session @ 0x2: expected 1-octet Token Item, found length 2");
    assert_eq!(err(&h("0206100101100101")), "session @ 0x5: expected parameter not already present, found 0x10");
    assert_eq!(err(&h("0100 3104 2a023161")), "session @ 0x7: expected decimal digit of a Serial Number, found 0x61");
    assert_eq!(
        err(&h("0100 3109 2a0731323334353637")),
        "session @ 0x4: expected Serial Number of 1 to 6 decimal digits, found length 7"
    );
    assert_eq!(err(&h("0100 3100")), "session @ 0x4: expected Serial Number (PI 42), found end of parameter field");
    assert_eq!(
        err(&h("0100 2d00")),
        "session @ 0x4: expected Activity Identifier (PI 41), found end of parameter field"
    );
    assert_eq!(
        err(&h("0100 1d07 2105 2a0131 0b00 290100")),
        "session @ 0xb: expected Activity Identifier (PI 41), found end of parameter field"
    );
    assert_eq!(err(&h("0c02 3200")), "session @ 0x2: expected Reason Code of at least 1 octet, found length 0");
    assert_eq!(
        err(&h("0e05 1403 024900")),
        "session @ 0x2: expected 2-octet Session User Requirements, found length 3"
    );
    // Concatenation.
    assert_eq!(
        err(&h("3103 2a0131")),
        "session @ 0x0: expected category 0 or 1 SPDU at the start of a TSDU, found 0x31"
    );
    assert_eq!(
        err(&h("1500 1500")),
        "session @ 0x2: expected end of TSDU after a category 1 SPDU, found 2 trailing octets"
    );
    assert_eq!(err(&h("0100 0200")), "session @ 0x2: expected category 2 SPDU after a category 0 SPDU, found 0x02");
    assert_eq!(
        err(&h("0100 3103 2a0131 3203 2a0131")),
        "session @ 0x7: expected end of TSDU (no extended concatenation), found 5 trailing octets"
    );
    // The kinds of error.
    assert_eq!(parse_tsdu(&[0x0d, 0x02, 0x14]).unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(parse_tsdu(&[0x0d, 0x01, 0x05, 0x00]).unwrap_err().kind(), ErrorKind::Invalid);
}

#[test]
fn limits() {
    // 65 unknown parameters in one field.
    let mut b = vec![0x15, 130];
    for _ in 0..65 {
        b.extend_from_slice(&[0x99, 0x00]);
    }
    let e = parse_tsdu(&b).unwrap_err();
    assert_eq!((e.offset, e.found), (2 + 128, Found::Other("more parameters")));
    b[1] = 128;
    b.truncate(130);
    assert_eq!(parse_tsdu(&b).unwrap().first().unwrap().params().len(), 64);
    // Nine concatenated SPDUs (extended concatenation).
    let ext = Context { extended_concatenation: true, ..Context::STRICT };
    let mut b = h("0100");
    for _ in 0..7 {
        b.extend_from_slice(&h("3203 2a0131"));
    }
    let t = parse_tsdu_with(&b, &ext).unwrap();
    assert_eq!(t.len(), 8);
    assert_eq!(reemit(&t), b);
    let at = b.len();
    b.extend_from_slice(&h("3203 2a0131"));
    let e = parse_tsdu_with(&b, &ext).unwrap_err();
    assert_eq!(e.to_string(), format!("session @ {at:#x}: expected at most 8 concatenated SPDUs, found more SPDUs"));
    // Extended concatenation still wants category 2 after category 2.
    assert_eq!(
        parse_tsdu_with(&h("0100 3203 2a0131 1500"), &ext).unwrap_err().to_string(),
        "session @ 0x7: expected category 2 SPDU, found 0x15"
    );
}

#[test]
fn length_escape_accepted_for_small_values() {
    // LI and a parameter length both in the 3-octet form.
    let b = h("02ff0007 10ff000101 c100");
    let t = parse_tsdu(&b).unwrap();
    assert_eq!(t.first(), Some(&Spdu::pt(Tokens::DATA, Some(&[]))));
    assert_eq!(reemit(&t), h("0205 100101 c100"));
    // Values of 255 octets and more use it on output.
    let ud = vec![0xab; 300];
    let pt = Spdu::pt(Tokens::TURN, Some(&ud));
    let mut out = Vec::new();
    emit(&pt, &mut out);
    assert_eq!(&out[..11], &h("02ff0133 100115 c1ff012c")[..]);
    assert_eq!(out.len(), encoded_len(&pt));
    assert_eq!(parse(&out).unwrap(), (pt, &[][..]));
    // A DT's user information is not counted in LI.
    let info = vec![7u8; 70_000];
    let t = Tsdu::after_gt(Spdu::dt(&info));
    let b = reemit(&t);
    assert_eq!(&b[..4], &[1, 0, 1, 0]);
    assert_eq!(parse_tsdu(&b).unwrap(), t);
}

#[test]
fn unknown_parameters_are_kept() {
    let b = h("1505 9901aa c100");
    let t = parse_tsdu(&b).unwrap();
    let s = t.first().unwrap();
    assert_eq!(s.kind(), SpduKind::Gtc);
    let p: Vec<_> = s.params().iter().map(|p| (p.code, p.value.to_vec())).collect();
    assert_eq!(p, [(0x99, vec![0xaa]), (0xc1, vec![])]);
    assert_eq!(s.user_data(), Some(&[][..]));
    assert_eq!(reemit(&t), b);
    assert_eq!(
        serde_json::to_value(s).unwrap(),
        serde_json::json!({"pdu": "GTC", "params": [{"code": 153, "value": "aa"}, {"code": 193, "value": ""}]})
    );
    // Unknown PIs inside a PGI, and an unknown PGI.
    let b = h("0d0c 0506 130100 7701ee 4202 0000");
    let t = parse_tsdu(&b).unwrap();
    let Some(Spdu::Cn(c)) = t.first() else { panic!() };
    assert_eq!(c.item.unwrap().params.get(0x77), Some(&[0xee][..]));
    assert_eq!(c.params.get(0x42), Some(&[0, 0][..]));
    assert_eq!(reemit(&t), b);
    // Non-canonical order is accepted; emission puts it in canonical order.
    let b = h("0e08 c100 1402 0249 0500");
    let t = parse_tsdu(&b).unwrap();
    assert_eq!(reemit(&t), h("0e08 0500 1402 0249 c100"));
    // A PGI whose value is not a sequence of PI units is an error.
    assert_eq!(err(&h("0e03 050113")), "session @ 0x5: expected parameter length, found end of parameter field");
}

#[test]
fn real_capture_tsdus_round_trip() {
    for (name, x) in [
        ("RF", RF_PING),
        ("AC", AC_PING),
        ("FN", FN_PING),
        ("DN", DN_PING),
        ("PT AEA", PT_AEA_P772),
        ("GT AE", GT_AE_P772),
    ] {
        let b = h(x);
        let t = parse_tsdu(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(names(&t).join(" "), name);
        assert_eq!(hex::encode(&reemit(&t)), x, "{name}");
    }
    let b = h(RF_PING);
    let t = parse_tsdu(&b).unwrap();
    let Some(Spdu::Rf(rf)) = t.first() else { panic!() };
    let id = rf.connection_id.unwrap();
    assert_eq!(id.called_ref, Some(&b"\x04\x08Percival"[..]));
    assert_eq!(&id.common_ref.unwrap()[..2], &[0x17, 0x0d]);
    assert_eq!(rf.transport_disconnect, Some(TD_RELEASE));
    assert_eq!(rf.requirements, Some(RTSE_REQUIREMENTS));
    let reason = rf.reason.unwrap();
    assert_eq!((reason.code, reason.data.len(), &reason.data[..2]), (2, 0x54, &[0x30, 0x52][..]));
    assert_eq!(t.first().unwrap().user_data(), Some(reason.data));
    // Another reason: no user data.
    let rf = Spdu::rf(RF_SSEL_UNKNOWN, &[]);
    assert_eq!(rf.user_data(), None);
    let mut out = Vec::new();
    emit(&rf, &mut out);
    assert_eq!(out, h("0c03 320181"));

    let b = h(AC_PING);
    let t = parse_tsdu(&b).unwrap();
    let Some(Spdu::Ac(ac)) = t.first() else { panic!() };
    assert_eq!(ac.called_ssel, Some(&[][..]));
    assert_eq!(ac.connection_id.unwrap().called_ref, Some(&b"\x04\x08Percival"[..]));

    let b = h(FN_PING);
    let t = parse_tsdu(&b).unwrap();
    assert_eq!(t.first(), Some(&Spdu::fn_(Some(TD_RELEASE), Some(&h("610c300a020101a0056203800100")))));
    let b = h(DN_PING);
    assert_eq!(parse_tsdu(&b).unwrap().first(), Some(&Spdu::dn(Some(&h("610c300a020101a0056303800100")))));
}

#[test]
fn malformed_iec_accept_strict_and_lenient() {
    let b = h(AC_IEC);
    assert_eq!(b.len(), 138);
    let e = parse_tsdu(&b).unwrap_err();
    assert_eq!(e.to_string(), "session @ 0x8a: expected parameter field of the length in LI, found end of input");

    let t = parse_tsdu_with(&b, &Context::LENIENT).unwrap();
    assert_eq!(t.repairs(), Repairs(Repairs::LI_CLAMPED.0 | Repairs::USER_DATA_TAKES_REST.0));
    let Some(Spdu::Ac(ac)) = t.first() else { panic!() };
    let item = ac.item.unwrap();
    assert_eq!(item.protocol_options, Some(0));
    assert_eq!(item.version, None);
    assert_eq!(item.params.get(0x06), Some(&[0x02][..]));
    assert_eq!(ac.requirements, Some(Requirements::DUPLEX));
    let ud = ac.user_data.unwrap();
    assert_eq!((ud.len(), &ud[..2]), (0x7a, &[0x31, 0x78][..]));
    assert!(ac.params.is_empty());
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["repairs"], serde_json::json!(["li-clamped", "user-data-takes-rest"]));
    // Re-emitted, it is a well-formed AC (not the original bytes).
    let out = reemit(&t);
    assert_eq!(parse_tsdu(&out).unwrap().first(), t.first());

    // Lenient mode also accepts what breaks concatenation.
    let b = h("3103 2a0131");
    let t = parse_tsdu_with(&b, &Context::LENIENT).unwrap();
    assert_eq!((names(&t), t.repairs()), (vec!["MIP"], Repairs::CONCATENATION));
}

#[test]
fn shared_si_codes() {
    let kinds = |b: &str, ctx: &Context| names(&parse_tsdu_with(&h(b), ctx).unwrap());
    let s = Context::STRICT;
    assert_eq!(kinds("0100", &s), ["GT"]);
    assert_eq!(kinds("0100 0100", &s), ["GT", "DT"]);
    assert_eq!(kinds("0103 100101 0100 abcd", &s), ["GT", "DT"]);
    assert_eq!(kinds("0200 0100", &s), ["PT", "DT"]);
    assert_eq!(kinds("1903 110103", &s), ["AB"]);
    assert_eq!(kinds("0100 1903 320107", &s), ["GT", "AI"]);
    assert_eq!(kinds("1a00", &s), ["AA"]);
    assert_eq!(kinds("0100 1a00", &s), ["GT", "AIA"]);
    assert_eq!(kinds("0100 2906 0f0101 2a0131", &s), ["GT", "MAP"]);
    assert_eq!(kinds("0100 2906 0f0100 2a0131", &s), ["GT", "AE"]);
    assert_eq!(kinds("0100 2903 2a0131", &s), ["GT", "AE"]);
    assert_eq!(kinds("0100 2a03 2a0131", &s), ["GT", "AEA"]);
    let ae = Context { last_major: Some(SpduKind::Ae), ..s };
    assert_eq!(kinds("0100 2a03 2a0131", &ae), ["GT", "AEA"]);
    let map = Context { last_major: Some(SpduKind::Map), ..s };
    assert_eq!(kinds("0100 2a03 2a0131", &map), ["GT", "MAA"]);
    let no_act = Context { requirements: Some(Requirements(0x0019)), ..s };
    assert_eq!(kinds("0100 2903 2a0131", &no_act), ["GT", "MAP"]);
    assert_eq!(kinds("0100 2a03 2a0131", &no_act), ["GT", "MAA"]);
    let rtse = Context { requirements: Some(RTSE_REQUIREMENTS), ..s };
    assert_eq!(kinds("0100 2a03 2a0131", &rtse), ["GT", "AEA"]);
    // TD alone (ISODE) or after GT; EX and PR alone.
    assert_eq!(kinds("2100 abcd", &s), ["TD"]);
    assert_eq!(kinds("0100 2100 abcd", &s), ["GT", "TD"]);
    assert_eq!(kinds("0500 ab", &s), ["EX"]);
    assert_eq!(kinds("0703 180102", &s), ["PR"]);
    // Single-SPDU parse: first-in-TSDU reading; parse_at for later ones.
    assert_eq!(parse(&h("0100")).unwrap().0.kind(), SpduKind::Gt);
    let b = h("0100 ab");
    let (dt, rest) = parse_at(&b, Some(SpduKind::Gt), &s).unwrap();
    assert_eq!((dt, rest), (Spdu::dt(&[0xab]), &[][..]));
    let b = h("0100 0100");
    let (gt, rest) = parse(&b).unwrap();
    assert_eq!((gt, rest), (Spdu::gt_empty(), &[1u8, 0][..]));
}

#[test]
fn tokens_and_settings() {
    assert_eq!(Tokens::TURN, Tokens::DATA.with(Tokens::MINOR).with(Tokens::MAJOR));
    assert!(Tokens::TURN.has(Token::MajorActivity) && !Tokens::TURN.has(Token::Release));
    assert_eq!(RTSE_REQUIREMENTS.available_tokens(), Tokens::TURN);
    let s = TokenSetting::TURN_RESPONDER;
    assert_eq!(s.position(Token::Data), TokenPosition::Responder);
    assert_eq!(s.position(Token::Release), TokenPosition::Initiator);
    assert_eq!(s.tokens_at(TokenPosition::Responder), Tokens::TURN);
    assert_eq!(
        TokenSetting::new(
            TokenPosition::CalledChoice,
            TokenPosition::CalledChoice,
            TokenPosition::CalledChoice,
            TokenPosition::Initiator
        ),
        TokenSetting::TURN_CALLED_CHOICE
    );
    assert_eq!(TokenSetting(0).with(Token::MinorSync, TokenPosition::Responder), TokenSetting(0x04));
    assert_eq!(SerialNumber::new(0).unwrap().as_str(), "0");
    assert_eq!(SerialNumber::new(120_034).unwrap().as_str(), "120034");
    assert_eq!(SerialNumber::new(1_000_000), None);
    assert_eq!(SerialNumber::wrapping(1_000_001).value(), 1);
    assert_eq!(SerialNumber::from_digits(b"007").map(|s| (s.value(), s.to_string())), Some((7, "007".into())));
    assert_eq!(SerialNumber::from_digits(b""), None);
    assert_eq!(SerialNumber::from_digits(b"1x"), None);
}

/// Every example TSDU and real-capture TSDU.
fn corpus() -> Vec<Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/examples/examples_bytes.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = vec![];
    for (ex, frames) in v.as_object().unwrap() {
        if ex == "ex1" {
            continue;
        }
        for (name, x) in frames.as_object().unwrap() {
            if name == "EXTERNAL" {
                continue;
            }
            let b = h(x.as_str().unwrap());
            out.push(if b.starts_with(&[3, 0]) { b[7..].to_vec() } else { b });
        }
    }
    for x in [RF_PING, AC_PING, FN_PING, DN_PING, PT_AEA_P772, GT_AE_P772, AC_IEC] {
        out.push(h(x));
    }
    out.sort();
    out.dedup();
    out
}

/// Parse with `ctx`; on success the canonical re-encoding parses to the same
/// value; on failure the offset is within the input.
fn check(b: &[u8], ctx: &Context) {
    match parse_tsdu_with(b, ctx) {
        Ok(t) => {
            let out = reemit(&t);
            let again = parse_tsdu_with(&out, ctx).unwrap_or_else(|e| panic!("{}: {e}", hex::encode(b)));
            assert!(again.iter().eq(t.iter()), "{}", hex::encode(b));
        }
        Err(e) => assert!(e.offset <= b.len(), "{e} for {}", hex::encode(b)),
    }
}

fn corrupt_every_byte(half: usize) {
    for b in corpus().iter().skip(half).step_by(2) {
        let mut m = b.clone();
        for i in 0..b.len() {
            for v in 0..=255u8 {
                m[i] = v;
                check(&m, &Context::STRICT);
            }
            m[i] = b[i];
        }
    }
}

#[test]
fn every_truncation() {
    for b in corpus() {
        for ctx in [Context::STRICT, Context::LENIENT] {
            for n in 0..b.len() {
                check(&b[..n], &ctx);
            }
        }
    }
}

// Split in two so that each half stays well under the per-test time budget.
#[test]
fn every_single_byte_corruption_first_half() {
    corrupt_every_byte(0);
}

#[test]
fn every_single_byte_corruption_second_half() {
    corrupt_every_byte(1);
}

/// Fuzz finding (corpus/regressions/session/): an AC with both Extended
/// User Data and (empty) User Data was accepted; emitted canonically (193
/// before 194) it read back, leniently, as User Data `c2 00`. X.225 v2 makes
/// the two alternatives: both is an error at the second one, in either order.
#[test]
fn user_data_and_extended_user_data_are_exclusive() {
    for (b, at) in [("0e04c200c100", 4), ("0e04c100c200", 4), ("0e06c20101c10102", 5)] {
        let e = parse_tsdu(&h(b)).unwrap_err();
        assert_eq!(
            (e.offset, e.expected),
            (at, "User Data (PGI 193) or Extended User Data (PGI 194), not both"),
            "{b}"
        );
    }
    let e = parse_tsdu_with(&h("0e04c200c100"), &Context::LENIENT).unwrap_err();
    assert_eq!(e.offset, 4);
    // Either one alone still decodes.
    assert!(parse_tsdu(&h("0e02c200")).is_ok());
    assert!(parse_tsdu(&h("0e02c100")).is_ok());
}
