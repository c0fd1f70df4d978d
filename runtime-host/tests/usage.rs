//! Usage metering: the outbox keeps every record across restarts and torn
//! writes, and delivers each at least once to a real HTTP sink, retrying
//! refusals; the data plane records every run, failed ones included.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sandflow_runtime_host::usage::{HttpSink, Outbox, UsageRecord};
use sandflow_runtime_host::{Invocation, Limits, RunContext, Runtime, RuntimeConfig};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A local usage sink: keeps what it is sent; refuses the first `refuse`
/// batches, and rejects (422, as the control plane does) every batch that
/// holds a record of tenant `invalid` (until `accept_invalid`) or
/// `unknown`, whole.
#[derive(Clone, Default)]
struct TestSink {
    received: Arc<Mutex<Vec<UsageRecord>>>,
    refuse: Arc<AtomicUsize>,
    batches: Arc<AtomicUsize>,
    accept_invalid: Arc<AtomicBool>,
}

impl TestSink {
    async fn start(self) -> String {
        async fn take(State(sink): State<TestSink>, Json(batch): Json<Vec<UsageRecord>>) -> (StatusCode, String) {
            sink.batches.fetch_add(1, Ordering::SeqCst);
            if sink.refuse.load(Ordering::SeqCst) > 0 {
                sink.refuse.fetch_sub(1, Ordering::SeqCst);
                return (StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            let accept_invalid = sink.accept_invalid.load(Ordering::SeqCst);
            let refused = |r: &UsageRecord| r.tenant == "unknown" || (r.tenant == "invalid" && !accept_invalid);
            if let Some(at) = batch.iter().position(refused) {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("record {at}: tenant `{}` is unknown", batch[at].tenant),
                );
            }
            sink.received.lock().expect("lock").extend(batch);
            (StatusCode::OK, String::new())
        }
        let app = axum::Router::new().route("/api/runtime/usage/", axum::routing::post(take)).with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/api/runtime/usage/", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn keys(&self) -> Vec<String> {
        self.received.lock().expect("lock").iter().map(|r| r.idempotency_key.clone()).collect()
    }
}

/// `Outbox::deliver_forever` to a sink, in the background until stopped.
struct Delivering {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Delivering {
    fn start(outbox: &Arc<Outbox>, url: String) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let outbox = outbox.clone();
        let task = tokio::spawn(async move {
            outbox
                .deliver_forever(HttpSink::new(url, None), async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { stop, task }
    }

    /// Waits (10 s at most) until `sink` holds `count` records, then stops.
    async fn stop_once(self, sink: &TestSink, count: usize) {
        for _ in 0..200 {
            if sink.keys().len() == count {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = self.stop.send(());
        self.task.await.expect("delivery task ends");
    }
}

fn record(n: usize) -> UsageRecord {
    UsageRecord {
        idempotency_key: format!("run-{n}"),
        tenant: "acme".into(),
        agent: "echo".into(),
        subscription: Some("sub-1".into()),
        flow_version: "sha256:00".into(),
        fuel: 1_000 + n as u64,
        tokens_in: 0,
        tokens_out: 0,
        wall_micros: 42,
        bytes_in: 5,
        bytes_out: 5,
        http_bytes: if n.is_multiple_of(2) { 0 } else { 4_096 },
        outcome: "completed".into(),
        started_at_ms: 1_700_000_000_000,
        key_id: Some(format!("key-{}", n % 3)),
    }
}

#[tokio::test]
async fn records_survive_a_restart_and_are_delivered_once_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let outbox = Outbox::open(dir.path()).expect("opens");
        for n in 0..10 {
            outbox.append(&record(n)).expect("appends");
        }
    } // the host goes away before delivering anything

    let sink = TestSink::default();
    let url = sink.clone().start().await;
    let outbox = Outbox::open(dir.path()).expect("reopens");
    let delivered = outbox.deliver_pending(&HttpSink::new(url.clone(), None)).await.expect("delivers");
    assert_eq!(delivered, 10);
    assert_eq!(sink.keys(), (0..10).map(|n| format!("run-{n}")).collect::<Vec<_>>());

    // Acknowledged records are not sent again, even after another restart.
    drop(outbox);
    let outbox = Outbox::open(dir.path()).expect("reopens");
    outbox.append(&record(10)).expect("appends");
    assert_eq!(outbox.deliver_pending(&HttpSink::new(url, None)).await.expect("delivers"), 1);
    assert_eq!(sink.keys().len(), 11);
}

#[tokio::test]
async fn a_refused_batch_is_retried_until_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestSink::default();
    sink.refuse.store(2, Ordering::SeqCst);
    let url = sink.clone().start().await;
    let outbox = Arc::new(Outbox::open(dir.path()).expect("opens"));
    for n in 0..3 {
        outbox.append(&record(n)).expect("appends");
    }
    assert!(outbox.deliver_pending(&HttpSink::new(url.clone(), None)).await.is_err(), "first refusal surfaces");

    let delivering = Delivering::start(&outbox, url);
    delivering.stop_once(&sink, 3).await;
    assert_eq!(sink.keys(), ["run-0", "run-1", "run-2"]);
}

/// While the sink refuses, appends do not hasten the retry: a busy host
/// backs off from a struggling control plane as an idle one does, and
/// delivers everything once it takes records again.
#[tokio::test]
async fn appends_do_not_cut_the_backoff_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestSink::default();
    sink.refuse.store(usize::MAX, Ordering::SeqCst);
    let url = sink.clone().start().await;
    let outbox = Arc::new(Outbox::open(dir.path()).expect("opens"));
    let delivering = Delivering::start(&outbox, url);
    // 1.2 s of a record every 5 ms: backing off from 100 ms (100, 200,
    // 400, 800) leaves room for five tries, not one per record.
    for n in 0..240 {
        outbox.append(&record(n)).expect("appends");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let tries = sink.batches.load(Ordering::SeqCst);
    assert!((1..=6).contains(&tries), "{tries} tries in 1.2 s");
    sink.refuse.store(0, Ordering::SeqCst);
    delivering.stop_once(&sink, 240).await;
    assert_eq!(sink.keys().len(), 240, "all delivered once the sink takes them");
}

/// A record the sink will never take (it rejects the batch that holds it,
/// whole) is set aside with the sink's reason; every record around it is
/// delivered, and delivery goes on.
#[tokio::test]
async fn a_rejected_record_is_set_aside_and_the_rest_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestSink::default();
    let url = sink.clone().start().await;
    let outbox = Outbox::open(dir.path()).expect("opens");
    for n in 0..40 {
        let record = UsageRecord { tenant: if n == 13 { "invalid".into() } else { "acme".into() }, ..record(n) };
        outbox.append(&record).expect("appends");
    }
    let sink_url = HttpSink::new(url.clone(), None);
    assert_eq!(outbox.deliver_pending(&sink_url).await.expect("delivers"), 40);
    let expected: Vec<String> = (0..40).filter(|&n| n != 13).map(|n| format!("run-{n}")).collect();
    assert_eq!(sink.keys(), expected, "each once, in order");
    assert!(sink.batches.load(Ordering::SeqCst) <= 2 * 6 + 1, "found by halving, not one by one");
    let rejected = std::fs::read_to_string(dir.path().join(sandflow_runtime_host::usage::REJECTED)).expect("kept");
    let kept: Vec<serde_json::Value> = rejected.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["record"]["idempotency_key"], "run-13");
    assert!(kept[0]["reason"].as_str().expect("reason").contains("422"), "{}", kept[0]);

    outbox.append(&record(40)).expect("appends");
    assert_eq!(outbox.deliver_pending(&sink_url).await.expect("delivers"), 1, "delivery goes on");
    assert_eq!(sink.keys().last().map(String::as_str), Some("run-40"));
}

/// Records set aside are offered again when delivery starts (and until the
/// sink answers): those it now takes leave the file, those it still
/// rejects stay with its new reason, and a line that cannot be read is
/// kept as it is.
#[tokio::test]
async fn set_aside_records_are_offered_again_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestSink::default();
    let url = sink.clone().start().await;
    let rejected_path = dir.path().join(sandflow_runtime_host::usage::REJECTED);
    {
        let outbox = Outbox::open(dir.path()).expect("opens");
        for n in 0..20 {
            let tenant = match n {
                5 | 6 => "invalid",
                9 => "unknown",
                _ => "acme",
            };
            outbox.append(&UsageRecord { tenant: tenant.into(), ..record(n) }).expect("appends");
        }
        assert_eq!(outbox.deliver_pending(&HttpSink::new(url.clone(), None)).await.expect("delivers"), 20);
    }
    assert_eq!(std::fs::read_to_string(&rejected_path).expect("kept").lines().count(), 3);
    assert_eq!(sink.keys().len(), 17);
    // A line torn by a crash (no newline), and the sink fixed for tenant
    // `invalid`.
    let mut torn = std::fs::OpenOptions::new().append(true).open(&rejected_path).expect("opens");
    std::io::Write::write_all(&mut torn, b"{\"record\": {\"idempot").expect("writes");
    sink.accept_invalid.store(true, Ordering::SeqCst);

    // The ledger is not up yet for the first offer: it is tried again.
    sink.refuse.store(1, Ordering::SeqCst);
    let outbox = Arc::new(Outbox::open(dir.path()).expect("reopens"));
    Delivering::start(&outbox, url.clone()).stop_once(&sink, 19).await;
    let mut keys = sink.keys();
    keys.sort();
    let mut expected: Vec<String> = (0..20).filter(|&n| n != 9).map(|n| format!("run-{n}")).collect();
    expected.sort();
    assert_eq!(keys, expected, "the fixed records delivered, once each");
    let left = std::fs::read_to_string(&rejected_path).expect("still kept");
    let left: Vec<&str> = left.lines().collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0], "{\"record\": {\"idempot", "the unreadable line, as it was");
    let kept: serde_json::Value = serde_json::from_str(left[1]).expect("JSON");
    assert_eq!(kept["record"]["idempotency_key"], "run-9");
    assert!(kept["reason"].as_str().expect("reason").contains("`unknown`"), "{kept}");

    // A sink that stops answering loses none of them.
    drop(outbox);
    let line =
        serde_json::json!({"record": UsageRecord { tenant: "invalid".into(), ..record(30) }, "reason": "earlier"});
    std::fs::write(&rejected_path, format!("{line}\n")).expect("writes");
    let outbox = Outbox::open(dir.path()).expect("reopens");
    let sink_url = HttpSink::new(url, None);
    sink.refuse.store(1, Ordering::SeqCst);
    assert!(outbox.offer_rejected_again(&sink_url).await.is_err());
    assert_eq!(std::fs::read_to_string(&rejected_path).expect("kept"), format!("{line}\n"));
    // Once the sink takes every record, the file goes.
    assert_eq!(outbox.offer_rejected_again(&sink_url).await.expect("offers"), 1);
    assert!(!rejected_path.exists());
    assert!(sink.keys().contains(&"run-30".to_owned()));

    // A record set aside after a torn line gets a line of its own.
    std::fs::write(&rejected_path, b"{\"torn").expect("writes");
    outbox.append(&UsageRecord { tenant: "unknown".into(), ..record(31) }).expect("appends");
    assert_eq!(outbox.deliver_pending(&sink_url).await.expect("delivers"), 1);
    let kept = std::fs::read_to_string(&rejected_path).expect("kept");
    let kept: Vec<&str> = kept.lines().collect();
    assert_eq!(kept[0], "{\"torn");
    let record: serde_json::Value = serde_json::from_str(kept[1]).expect("a line of its own");
    assert_eq!(record["record"]["idempotency_key"], "run-31");
}

#[tokio::test]
async fn a_record_torn_by_a_crash_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let outbox = Outbox::open(dir.path()).expect("opens");
        outbox.append(&record(0)).expect("appends");
    }
    let segment = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes.extend_from_slice(br#"{"idempotency_key":"torn","ten"#);
    std::fs::write(&segment, bytes).expect("write");

    let outbox = Outbox::open(dir.path()).expect("reopens");
    outbox.append(&record(1)).expect("appends");
    let sink = TestSink::default();
    let url = sink.clone().start().await;
    outbox.deliver_pending(&HttpSink::new(url, None)).await.expect("delivers");
    assert_eq!(sink.keys(), ["run-0", "run-1"]);
}

/// After a power loss the disk may hold less of a segment than the saved
/// cursor says was delivered (records sent from the page cache, then
/// lost), or no file for the segment the cursor names. Records written
/// after the restart are delivered all the same.
#[tokio::test]
async fn records_after_a_power_loss_are_delivered_though_the_cursor_ran_ahead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TestSink::default();
    let url = sink.clone().start().await;
    {
        let outbox = Outbox::open(dir.path()).expect("opens");
        outbox.append(&record(0)).expect("appends");
        outbox.append(&record(1)).expect("appends");
        assert_eq!(outbox.deliver_pending(&HttpSink::new(url.clone(), None)).await.expect("delivers"), 2);
    }
    // The disk kept the first record only.
    let segment = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl") && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .expect("the written segment");
    let first_line = serde_json::to_vec(&record(0)).expect("json").len() as u64 + 1;
    std::fs::OpenOptions::new().write(true).open(&segment).expect("opens").set_len(first_line).expect("cut");
    let outbox = Outbox::open(dir.path()).expect("reopens");
    outbox.append(&record(2)).expect("appends");
    outbox.append(&record(3)).expect("appends");
    outbox.deliver_pending(&HttpSink::new(url.clone(), None)).await.expect("delivers");
    assert_eq!(sink.keys(), ["run-0", "run-1", "run-2", "run-3"]);

    // The cursor names a segment the disk never got.
    drop(outbox);
    std::fs::write(dir.path().join("cursor"), "99 0\n").expect("written");
    let outbox = Outbox::open(dir.path()).expect("reopens");
    outbox.append(&record(4)).expect("appends");
    outbox.deliver_pending(&HttpSink::new(url, None)).await.expect("delivers");
    assert_eq!(sink.keys().last().map(String::as_str), Some("run-4"));
}

#[tokio::test]
async fn segments_rotate_and_delivered_ones_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(dir.path()).expect("opens");
    let per_record = serde_json::to_vec(&record(0)).expect("json").len() + 1;
    let count = (sandflow_runtime_host::usage::SEGMENT_BYTES as usize / per_record) * 2 + 10;
    for n in 0..count {
        outbox.append(&record(n)).expect("appends");
    }
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .expect("dir")
            .filter(|e| e.as_ref().expect("entry").path().extension().is_some_and(|x| x == "jsonl"))
            .count()
    };
    assert!(segments(dir.path()) >= 3, "rotated");
    let sink = TestSink::default();
    let url = sink.clone().start().await;
    assert_eq!(outbox.deliver_pending(&HttpSink::new(url, None)).await.expect("delivers"), count);
    let keys: HashSet<String> = sink.keys().into_iter().collect();
    assert_eq!(keys.len(), count, "each record once");
    assert_eq!(segments(dir.path()), 1, "delivered segments are removed");
}

/// A run that computes for longer than a slice of its lane is journaled
/// among the runs in progress, with what it uses as it goes: a host that
/// stops before the run ends (here the outbox is dropped with the run
/// unfinished) records it as interrupted when the outbox next opens.
#[tokio::test]
async fn a_run_the_host_stops_in_is_recorded_as_interrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(&RuntimeConfig::default()).expect("runtime");
    let hostile = std::fs::read(sandflow_guest_artifacts::HOSTILE_NODE).expect("built");
    let node = runtime.load_node(&hostile).expect("loads");
    {
        let outbox = Outbox::open(dir.path()).expect("opens");
        let context = RunContext { in_progress: Some(outbox.start(&record(1))), ..RunContext::default() };
        let limits =
            Limits { fuel: u64::MAX / 2, deadline: std::time::Duration::from_millis(500), ..Limits::default() };
        let spin = Invocation {
            component: "Spin".into(),
            node_id: "Spin-1".into(),
            display_name: "Spin".into(),
            session_id: "s".into(),
            fields: vec![],
            wanted: vec!["out".into()],
        };
        runtime.sandbox_for(limits, context).run_node(&node, &spin).expect_err("spins until its deadline");
        // The host stops here, before the run's record is written.
    }
    let sink = TestSink::default();
    let url = sink.clone().start().await;
    let outbox = Outbox::open(dir.path()).expect("reopens");
    assert_eq!(outbox.deliver_pending(&HttpSink::new(url, None)).await.expect("delivers"), 1);
    let received = sink.received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    assert_eq!((received[0].idempotency_key.as_str(), received[0].outcome.as_str()), ("run-1", "interrupted"));
    // Checkpointed every tenth of a second as it computed: nearly all of
    // its half second is counted. (Its fuel is as of its last call: a loop
    // that calls nothing keeps its count in a register.)
    assert!(received[0].wall_micros >= 300_000, "{:?}", received[0]);
}
