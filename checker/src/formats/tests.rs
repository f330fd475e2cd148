use super::*;
use serde_json::json;

fn import(text: &str, format: Format) -> Result<Imported, FormatError> {
    import_str(text, "h", format, &ImportOptions::default())
}

fn err(text: &str, format: Format) -> String {
    import(text, format).unwrap_err().to_string()
}

#[test]
fn knossos_edn_semantics() {
    let text = "; comment\n[{:process 0, :type :invoke, :f :read, :value 4}\n {:process 0, :type :ok, :f :read, :value nil}\n {:process 1, :type :invoke, :f :cas, :value [0 1]}\n {:process 1, :type :fail, :f :cas, :value nil, :error :precondition-failed}\n {:process :nemesis, :type :info, :f :start, :value nil}\n {:process 2, :type :invoke, :f :write, :value 3}\n {:process 2, :type :info, :f :write, :value 3}]";
    let h = import(text, Format::JepsenEdn).unwrap();
    assert_eq!(h.model, ModelKind::Register);
    assert_eq!(h.init, json!(0));
    assert_eq!(h.events.len(), 7);
    assert_eq!(h.lines[..3], [2, 3, 4]);
    let read_invoke = &h.events[0];
    assert_eq!(
        read_invoke.value,
        Value::Null,
        "read invoke value is dropped"
    );
    let unknown_read = &h.events[1];
    assert_eq!(unknown_read.kind, EventType::Fail);
    assert_eq!(unknown_read.error.as_deref(), Some("unknown-read"));
    let cas_fail = &h.events[3];
    assert_eq!(cas_fail.value, json!([0, 1]), "filled from the invoke");
    assert_ne!(cas_fail.error.as_deref(), Some("precondition-failed"));
    assert!(h.events[4].is_nemesis());
    assert_eq!(h.events[6].kind, EventType::Info);
    let times: Vec<u64> = h.events.iter().map(|e| e.time).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert!(h
        .events
        .iter()
        .enumerate()
        .all(|(i, e)| e.index == i as u64));
}

#[test]
fn init_option_overrides_and_nil_means_absent() {
    let text = "[{:process 0, :type :invoke, :f :write, :value 1} {:process 0, :type :ok, :f :write, :value 1}]";
    let opts = ImportOptions {
        init: Some(parse_init("nil").unwrap()),
    };
    let h = import_str(text, "h", Format::JepsenEdn, &opts).unwrap();
    assert_eq!(h.init, Value::Null);
    let opts = ImportOptions {
        init: Some(parse_init("7").unwrap()),
    };
    let h = import_str(text, "h", Format::JepsenEdn, &opts).unwrap();
    assert_eq!(h.init, json!(7));
    assert_eq!(h.events.len(), 2);
    assert_eq!(parse_init("\"abc\""), Ok(json!("abc")));
    assert_eq!(parse_init("null"), Ok(Value::Null));
}

#[test]
fn jepsen_log_semantics() {
    let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                INFO  jepsen.util - 0\t:ok\t:read\tnil\n\
                INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]\n\
                INFO  jepsen.util - 1  :fail   :cas    [3 0]\n\
                INFO  jepsen.util - 2\t:invoke\t:write\t4\n\
                INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n\
                INFO  jepsen.util - 3\t:invoke\t:read\tnil\n\
                INFO  jepsen.util - 3\t:fail\t:read\t:timed-out\n";
    let h = import(text, Format::JepsenLog).unwrap();
    assert_eq!(h.model, ModelKind::Register);
    assert_eq!(h.init, Value::Null);
    let e = &h.events;
    assert_eq!((e[1].kind, &e[1].value), (EventType::Ok, &Value::Null));
    assert_eq!(e[3].kind, EventType::Fail);
    assert_eq!(e[3].error.as_deref(), Some("precondition-failed"));
    assert_eq!(e[3].value, json!([3, 0]));
    assert_eq!((e[5].kind, &e[5].value), (EventType::Info, &json!(4)));
    assert_eq!(e[5].error.as_deref(), Some("timed-out"));
    assert_eq!((e[7].kind, e[7].f.as_str()), (EventType::Fail, "read"));
    assert_eq!(h.lines, (1..=8).collect::<Vec<_>>());
}

#[test]
fn porcupine_kv_maps_get_put_append() {
    let text = "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                {:process 0, :type :ok, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                {:process 0, :type :invoke, :f :get, :key \"7\", :value nil}\n\
                {:process 0, :type :ok, :f :get, :key \"7\", :value \"\"}\n\
                {:process 1, :type :invoke, :f :put, :key \"4\", :value \"x 3 12 y\"}\n";
    let h = import(text, Format::PorcupineKv).unwrap();
    assert_eq!(h.model, ModelKind::Append);
    let fs: Vec<&str> = h.events.iter().map(|e| e.f.as_str()).collect();
    assert_eq!(fs, ["append", "append", "read", "read", "write"]);
    assert_eq!(h.events[3].value, json!(""));
    assert_eq!(h.events[4].key.as_deref(), Some("4"));
}

#[test]
fn jsonl_infers_the_model() {
    let reg = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","value":null}"#;
    assert_eq!(
        import(reg, Format::Jsonl).unwrap().model,
        ModelKind::Register
    );
    let kv =
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","key":"a","value":null}"#;
    assert_eq!(import(kv, Format::Jsonl).unwrap().model, ModelKind::Kv);
    assert!(import("", Format::Jsonl).unwrap().events.is_empty());
}

#[test]
fn bad_input_names_file_line_and_problem() {
    let e = err("{\"index\":0}\n{oops", Format::Jsonl);
    assert!(e.starts_with("h:1: "), "{e}");
    let two = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
    let e = err(&format!("{two}{two}"), Format::Jsonl);
    assert!(e.starts_with("h:2: second invoke on busy process 0"), "{e}");
    let e = err(
        "\n{\"index\":0,\"time\":1,\"process\":3,\"type\":\"ok\",\"f\":\"read\",\"value\":1}",
        Format::Jsonl,
    );
    assert!(
        e.starts_with("h:2: completion (ok) of read by process 3 with no invoke"),
        "{e}"
    );
    let e = err(
        "{\"index\":0,\"time\":1,\"process\":3,\"type\":\"invoke\",\"f\":\"scan\"}",
        Format::Jsonl,
    );
    assert!(e.starts_with("h:1: unknown f `scan`"), "{e}");
    let e = err(
        "{\"index\":0,\"time\":1,\"process\":3,\"type\":\"done\",\"f\":\"read\"}",
        Format::Jsonl,
    );
    assert!(e.starts_with("h:1: ") && e.contains("done"), "{e}");
    let e = err(
        "[{:process 1, :type :invoke, :f :read}\n {:process 1, :type :done, :f :read}]",
        Format::JepsenEdn,
    );
    assert!(e.starts_with("h:2: unknown :type `:done`"), "{e}");
    let e = err(
        "[{:process 1, :type :invoke, :f :read}\n {:process 1 :type}]",
        Format::JepsenEdn,
    );
    assert!(e.starts_with("h:2: bad EDN: map has an odd number"), "{e}");
    let e = err(
        "[{:process 1, :type :invoke, :f :read}\n",
        Format::JepsenEdn,
    );
    assert!(
        e.contains("end of file inside a collection opened on line 1"),
        "{e}"
    );
    let e = err("[{:type :invoke, :f :read}]", Format::JepsenEdn);
    assert!(e.starts_with("h:1: op has no :process"), "{e}");
    let e = err("INFO  jepsen.util - 1\t:invoke\n", Format::JepsenLog);
    assert!(
        e.starts_with("h:1: expected `<process> :<type> :<f> <value>`"),
        "{e}"
    );
    let e = err("hello\nworld\n", Format::JepsenLog);
    assert!(e.contains("no `jepsen.util -` op lines"), "{e}");
    let e = err(
        "{:process 0, :type :invoke, :f :get, :value nil}",
        Format::PorcupineKv,
    );
    assert!(e.starts_with("h:1: read op has no :key"), "{e}");
}

#[test]
fn detects_formats() {
    let p = Path::new("x.txt");
    assert_eq!(Format::detect(Path::new("h.edn"), ""), Format::JepsenEdn);
    assert_eq!(
        Format::detect(p, "INFO  jepsen.util - 1 :invoke :read nil"),
        Format::JepsenLog
    );
    assert_eq!(
        Format::detect(p, "{:process 0, :type :invoke, :f :get, :key \"1\"}"),
        Format::PorcupineKv
    );
    assert_eq!(Format::detect(p, "{\"index\":0}"), Format::Jsonl);
    assert_eq!(Format::detect(p, ""), Format::Jsonl);
}

#[test]
fn never_panics_on_garbage() {
    let samples = [
        "[",
        "(",
        "{",
        "]",
        "#",
        "#{",
        "\\",
        ":",
        "\"",
        "\"\\u12",
        "[1 2 3]",
        "{:a}",
        "-",
        "+",
        "1e999999",
        "#_",
        "[#_]",
        "\u{0}",
        "{:process -1, :type :ok, :f :read}",
        "INFO  jepsen.util - [",
        "INFO  jepsen.util - 1 :ok :read [",
    ];
    for s in samples {
        for f in Format::ALL {
            let _ = import(s, f);
        }
    }
}

/// Every history in the shared corpus imports without error, in the format [`Format::detect`]
/// guesses, with the model its EXPECTED.md names.
#[test]
fn imports_every_corpus_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if !root.is_dir() {
        // Skipping is for a developer without the corpus, never for CI.
        assert!(
            std::env::var_os("CI").is_none(),
            "no corpus at {} and CI is set: the corpus import test must run in CI",
            root.display()
        );
        eprintln!(
            "SKIPPED: no corpus at {} (tests using it did not run)",
            root.display()
        );
        return;
    }
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e != "md") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 200, "{}", files.len());
    for p in files {
        let h = import_file(&p, None, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let s = p.display().to_string();
        let (format, model) = if s.contains("/kv/") {
            (Format::PorcupineKv, ModelKind::Append)
        } else if s.contains("/jepsen/") {
            (Format::JepsenLog, ModelKind::Register)
        } else if s.contains("multi-register") {
            (Format::JepsenEdn, ModelKind::MultiRegister)
        } else if s.contains("mutex") {
            (Format::JepsenEdn, ModelKind::Mutex)
        } else {
            (Format::JepsenEdn, ModelKind::Register)
        };
        assert_eq!((h.format, h.model), (format, model), "{s}");
        if !s.ends_with("etcd_095.log") && !s.contains("ack-rollback-.edn") {
            assert!(h.events.iter().any(|e| !e.is_nemesis()), "{s}");
        }
    }
}

fn jl(p: u64, kind: &str, f: &str, time: u64, value: &str) -> String {
    format!(
        r#"{{"index":0,"time":{time},"process":{p},"type":"{kind}","f":"{f}","value":{value}}}"#
    )
}

#[test]
fn a_torn_last_line_is_dropped_and_named() {
    let whole = format!(
        "{}\n{}\n",
        jl(0, "invoke", "write", 1, "1"),
        jl(0, "ok", "write", 2, "1")
    );
    let h = import(&format!("{whole}{{\"index\":2,\"ti"), Format::Jsonl).unwrap();
    assert_eq!(h.events.len(), 2);
    let torn = h.torn_last_line.unwrap();
    assert_eq!(torn.line, 3);
    assert!(torn.msg.contains("EOF"), "{}", torn.msg);
    // The same bad line written whole (newline included) is bad input, not a torn write.
    let e = err(&format!("{whole}{{\"index\":2,\"ti\n"), Format::Jsonl);
    assert!(e.starts_with("h:3: "), "{e}");
    // Complete JSON that is not an event is bad input too, newline or not.
    let e = err(&format!("{whole}{{\"index\":2}}"), Format::Jsonl);
    assert!(e.starts_with("h:3: "), "{e}");
    assert!(import(&whole, Format::Jsonl)
        .unwrap()
        .torn_last_line
        .is_none());
    assert_eq!(torn_tail(whole.trim_end()), None);
}

#[test]
fn a_completion_before_its_invoke_is_refused() {
    let text = format!(
        "{}\n{}\n",
        jl(0, "invoke", "write", 50, "1"),
        jl(0, "ok", "write", 40, "1")
    );
    let e = err(&text, Format::Jsonl);
    assert!(
        e.starts_with("h:2: completion of write by process 0 at time 40 is earlier than its invoke on line 1 at time 50"),
        "{e}"
    );
}

#[test]
fn json_arrays_and_byte_order_marks_are_named() {
    let arr = format!("[{}]", jl(0, "invoke", "read", 1, "null"));
    assert_eq!(Format::detect(Path::new("h.json"), &arr), Format::JepsenEdn);
    let e = err(&arr, Format::JepsenEdn);
    assert!(e.starts_with("h:1: this is a JSON array of events"), "{e}");
    // A pretty-printed JSON object is JSON, not EDN.
    let pretty = "{\n  \"index\": 0\n}";
    assert_eq!(Format::detect(Path::new("h"), pretty), Format::Jsonl);
    let line = jl(0, "invoke", "read", 1, "null");
    let e = err(&format!("{line}\n\u{feff}{line}\n"), Format::Jsonl);
    assert!(
        e.starts_with("h:2: ") && e.contains("byte-order mark"),
        "{e}"
    );
}

#[test]
fn edn_integers_beyond_64_bits_are_refused() {
    let text = "[{:process 0, :type :invoke, :f :write, :value 1180591620717411303424N}]";
    let e = err(text, Format::JepsenEdn);
    assert!(e.contains("does not fit in 64 bits"), "{e}");
}

#[test]
fn init_values_that_are_not_json_are_refused() {
    for bad in ["O", "abc", "1,"] {
        let e = parse_init(bad).unwrap_err();
        assert!(
            e.starts_with(&format!("--init {bad}: not a JSON value")),
            "{e}"
        );
    }
    let e = parse_init("1180591620717411303424").unwrap_err();
    assert!(e.contains("cannot be kept exact"), "{e}");
    assert_eq!(parse_init("-3"), Ok(json!(-3)));
}

#[test]
fn the_largest_time_is_an_error_not_an_overflow() {
    let max = u64::MAX;
    let text = format!(
        "{}\n{}\n",
        jl(0, "invoke", "write", max, "1"),
        jl(0, "ok", "write", max, "1")
    );
    let e = err(&text, Format::Jsonl);
    assert!(
        e.starts_with(&format!("h:2: time {max} leaves no room")),
        "{e}"
    );
}
