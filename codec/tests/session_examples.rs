//! The session part of every worked example (examples.md, examples_bytes.json)
//! decodes to the values examples.md states and re-emits byte for byte.

use pretty_assertions::assert_eq;
use rtse_codec::hex;
use rtse_codec::session::{self, *};

fn examples() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/examples/examples_bytes.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("examples_bytes.json")).expect("json")
}

/// The TSDU of example `ex`/`name`: TPKT-framed ones lose their 7-octet
/// `03 00 LL LL 02 f0 80` header.
fn tsdu(ex: &str, name: &str) -> Vec<u8> {
    let v = examples();
    let h = v[ex][name].as_str().unwrap_or_else(|| panic!("{ex}/{name}"));
    let b = hex::decode(h).expect("hex");
    if b.starts_with(&[3, 0]) && b.get(4..7) == Some(&[2, 0xf0, 0x80][..]) {
        assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), b.len(), "{ex}/{name} TPKT length");
        b[7..].to_vec()
    } else {
        b
    }
}

/// Parse, check re-emission and encoded length, return the TSDU.
fn round_trip(bytes: &[u8]) -> Tsdu<'_> {
    let t = parse_tsdu(bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    emit_tsdu(&t, &mut out);
    assert_eq!(hex::encode(&out), hex::encode(bytes), "re-emission");
    assert_eq!(encoded_len_tsdu(&t), bytes.len());
    assert!(t.repairs().is_empty());
    t
}

fn names(t: &Tsdu<'_>) -> Vec<&'static str> {
    t.iter().map(Spdu::name).collect()
}

fn json(s: &Spdu<'_>) -> serde_json::Value {
    serde_json::to_value(s).unwrap()
}

#[test]
fn ex2_cn_and_ac_normal_mode() {
    let cn = tsdu("ex2", "CN_tsdu");
    assert_eq!(&cn[..2], &[0x0d, 0xad]);
    let t = round_trip(&cn);
    assert_eq!(names(&t), ["CN"]);
    let Some(Spdu::Cn(c)) = t.first() else { panic!() };
    let item = c.item.unwrap();
    assert_eq!(item.protocol_options, Some(0));
    assert_eq!(item.version, Some(VERSION_2));
    assert_eq!(item.token_setting, Some(TokenSetting::ALL_INITIATOR));
    assert_eq!(c.effective_token_setting().position(Token::Data), TokenPosition::Initiator);
    assert_eq!(c.requirements, Some(RTSE_REQUIREMENTS));
    assert_eq!(c.calling_ssel, Some(&[0u8, 1][..]));
    assert_eq!(c.called_ssel, Some(&[0u8, 1][..]));
    assert!(c.connection_id.is_none());
    let ud = c.user_data.unwrap();
    assert_eq!((ud.len(), &ud[..3]), (148, &[0x31, 0x81, 0x91][..]));
    assert_eq!(t.first().unwrap().user_data(), Some(ud));
    assert!(c.params.is_empty());

    let ac = tsdu("ex2", "AC_tsdu");
    let t = round_trip(&ac);
    let Some(Spdu::Ac(a)) = t.first() else { panic!() };
    assert_eq!(a.token_setting(), Some(TokenSetting(0)));
    assert_eq!(a.version(), Some(2));
    assert_eq!(a.requirements, Some(Requirements(0x0249)));
    assert_eq!((a.calling_ssel, a.called_ssel), (None, Some(&[0u8, 1][..])));
    assert_eq!(&a.user_data.unwrap()[..2], &[0x31, 0x7b]);
    assert_eq!(a.user_data.unwrap().len(), 0x7d);

    // The frames carry the same TSDUs.
    assert_eq!(tsdu("ex2", "frame3_tpkt"), cn);
    assert_eq!(tsdu("ex2", "frame4_tpkt"), ac);
}

#[test]
fn ex3_transfer_activity() {
    let b = tsdu("ex3", "AS");
    let t = round_trip(&b);
    assert_eq!(names(&t), ["GT", "AS"]);
    assert_eq!(t.first(), Some(&Spdu::gt_empty()));
    assert_eq!(t.last(), Some(&Spdu::as_(&[2, 1, 1])));
    assert_eq!(t.last().unwrap().activity_id(), Some(&[2u8, 1, 1][..]));

    for dt in ["DT1", "DT2"] {
        let b = tsdu("ex3", dt);
        let t = round_trip(&b);
        assert_eq!(names(&t), ["GT", "DT"]);
        let info = t.last().unwrap().user_data().unwrap();
        assert_eq!(&info[..11], &hex::decode("61653063020103a05e045c").unwrap()[..]);
        assert_eq!(info.len(), 0x72 - 7 - 4);
        assert_eq!(t.last(), Some(&Spdu::dt(info)));
    }

    let serial = |n| SerialNumber::new(n).unwrap();
    let cases = [
        ("MIP", Spdu::mip(serial(1), true)),
        ("MIA", Spdu::mia(serial(1))),
        ("AE", Spdu::ae(serial(2))),
        ("AEA", Spdu::aea(serial(2))),
    ];
    for (name, want) in cases {
        let b = tsdu("ex3", name);
        let t = round_trip(&b);
        assert_eq!(names(&t), ["GT", name]);
        assert_eq!(t.last(), Some(&want));
        // Built from the constructors, the TSDU is the example's bytes.
        let mut out = Vec::new();
        emit_tsdu(&Tsdu::after_gt(want), &mut out);
        assert_eq!(out, b);
    }
    let b = tsdu("ex3", "MIP");
    let t = parse_tsdu(&b).unwrap();
    let Some(Spdu::Mip(m)) = t.last() else { panic!() };
    assert!(m.confirm_required());
    assert_eq!((m.serial.value(), m.serial.as_str()), (1, "1"));
    assert_eq!(t.last().unwrap().serial().map(|s| s.value()), Some(1));

    // With context that the peer's SI 41 was a MAP, the SI 42 is an MAA
    // (Wireshark's reading).
    let b = tsdu("ex3", "AEA");
    let ctx = Context { last_major: Some(SpduKind::Map), ..Context::STRICT };
    let t = parse_tsdu_with(&b, &ctx).unwrap();
    assert_eq!(names(&t), ["GT", "MAA"]);
    // And without activity management, SI 41 is MAP.
    let b = tsdu("ex3", "AE");
    let ctx = Context { requirements: Some(Requirements(0x0019)), ..Context::STRICT };
    assert_eq!(names(&parse_tsdu_with(&b, &ctx).unwrap()), ["GT", "MAP"]);
}

#[test]
fn ex4_turn_please_and_give_normal_mode() {
    let b = tsdu("ex4", "PT");
    let t = round_trip(&b);
    assert_eq!(names(&t), ["PT"]);
    let pt = t.first().unwrap();
    assert_eq!(pt.token_item(), Some(Tokens::DATA));
    let ud = hex::decode("610a3008020103a003020100").unwrap();
    assert_eq!(pt.user_data(), Some(&ud[..]));
    assert_eq!(pt, &Spdu::pt(Tokens::DATA, Some(&ud)));

    let b = tsdu("ex4", "GTC");
    assert_eq!(b, [0x15, 0]);
    let t = round_trip(&b);
    assert_eq!(t.first(), Some(&Spdu::gtc()));
    assert_eq!(json(t.first().unwrap()), serde_json::json!({"pdu": "GTC"}));
    let b = tsdu("ex4", "GTA");
    assert_eq!(round_trip(&b).first(), Some(&Spdu::gta()));
}

#[test]
fn ex5_recovery_cn_ac_ar() {
    let b = tsdu("ex5", "CN");
    let t = round_trip(&b);
    let Some(Spdu::Cn(c)) = t.first() else { panic!() };
    let id = c.connection_id.unwrap();
    assert_eq!(id.calling_ref, Some(&b"MTA-A/0002"[..]));
    assert_eq!(id.common_ref, Some(&b"250101120500Z"[..]));
    assert_eq!((id.called_ref, id.additional_ref), (None, None));
    assert_eq!(c.token_setting(), Some(TokenSetting::ALL_INITIATOR));
    assert_eq!(c.user_data.unwrap().len(), 0x9a);

    let b = tsdu("ex5", "AC");
    let t = round_trip(&b);
    let Some(Spdu::Ac(a)) = t.first() else { panic!() };
    assert_eq!(a.token_setting(), Some(TokenSetting::ALL_INITIATOR));

    let b = tsdu("ex5", "AR");
    let t = round_trip(&b);
    assert_eq!(names(&t), ["GT", "AR"]);
    let Some(Spdu::Ar(ar)) = t.last() else { panic!() };
    assert_eq!(ar.linking.calling_ref, Some(&b"MTA-A/0001"[..]));
    assert_eq!(ar.linking.common_ref, Some(&b"250101115500Z"[..]));
    assert_eq!(ar.linking.old_activity_id, &[2, 1, 1]);
    assert_eq!(ar.linking.serial.value(), 1);
    assert_eq!(ar.activity_id, &[2, 1, 2]);
    let want = Spdu::ar(
        Linking::new(&[2, 1, 1], SerialNumber::new(1).unwrap()).with_refs(Some(b"MTA-A/0001"), Some(b"250101115500Z")),
        &[2, 1, 2],
    );
    assert_eq!(t.last(), Some(&want));
}

#[test]
fn ex6_x410_mode() {
    let b = tsdu("ex6", "CN");
    let t = round_trip(&b);
    let Some(Spdu::Cn(c)) = t.first() else { panic!() };
    assert_eq!(c.version(), Some(VERSION_1));
    assert_eq!(c.token_setting(), Some(TokenSetting(0)));
    assert_eq!(c.requirements, Some(RTSE_REQUIREMENTS));
    assert_eq!(&c.user_data.unwrap()[..2], &[0x31, 0x2a]);
    // The builder reproduces it.
    let built = Spdu::cn(
        Connect::new(VERSION_1, TokenSetting::ALL_INITIATOR, RTSE_REQUIREMENTS, c.user_data.unwrap())
            .with_ssels(Some(&[0, 1]), Some(&[0, 1])),
    );
    assert_eq!(t.first(), Some(&built));

    let b = tsdu("ex6", "AC");
    let t = round_trip(&b);
    let Some(Spdu::Ac(a)) = t.first() else { panic!() };
    assert_eq!(a.effective_version(), 1);

    let b = tsdu("ex6", "PT");
    assert_eq!(hex::encode(&b), "0208100101c103020100");
    let t = round_trip(&b);
    assert_eq!(t.first(), Some(&Spdu::pt(Tokens::DATA, Some(&[2, 1, 0]))));
    assert_eq!(
        json(t.first().unwrap()),
        serde_json::json!({"pdu": "PT", "token_item": ["data"], "user_data": "020100"})
    );
    assert_eq!(round_trip(&tsdu("ex6", "GTC")).first(), Some(&Spdu::gtc()));
    assert_eq!(round_trip(&tsdu("ex6", "GTA")).first(), Some(&Spdu::gta()));
}

#[test]
fn ex7_abort() {
    let b = tsdu("ex7", "AB");
    let t = round_trip(&b);
    assert_eq!(names(&t), ["AB"]);
    let Some(Spdu::Ab(ab)) = t.first() else { panic!() };
    assert_eq!(ab.transport_disconnect, Some(TD_RELEASE | TD_USER_ABORT));
    assert_eq!(ab.user_data.map(<[u8]>::len), Some(0x1e));
    assert_eq!(&ab.user_data.unwrap()[..2], &[0xa0, 0x1c]);
    assert_eq!(t.first(), Some(&Spdu::ab(0x03, ab.user_data)));
    let b = tsdu("ex7", "AA");
    assert_eq!(round_trip(&b).first(), Some(&Spdu::aa()));
}

#[test]
fn json_shapes() {
    let b = tsdu("ex5", "AR");
    let t = parse_tsdu(&b).unwrap();
    assert_eq!(
        serde_json::to_value(t).unwrap(),
        serde_json::json!({"spdus": [
            {"pdu": "GT"},
            {"pdu": "AR",
             "linking": {"calling_ref": "4d54412d412f30303031", "common_ref": "3235303130313131353530305a",
                         "old_activity_id": "020101", "serial": "1"},
             "activity_id": "020102"}
        ]})
    );
    let b = tsdu("ex2", "AC_tsdu");
    let v = json(parse_tsdu(&b).unwrap().first().unwrap());
    assert_eq!(v["pdu"], "AC");
    assert_eq!(
        v["item"],
        serde_json::json!({"protocol_options": 0, "version": 2, "token_setting":
            {"data": "initiator", "minor-sync": "initiator", "major-activity": "initiator", "release": "initiator"}})
    );
    assert_eq!(
        v["requirements"],
        serde_json::json!(["half-duplex", "minor-sync", "activity-management", "exceptions"])
    );
    assert_eq!(v["called_ssel"], "0001");
    let _ = session::MAX_PARAM_LEN;
}
