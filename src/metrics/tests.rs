//! Exposition tests: record through [`WorkerMetrics`] into a local [`Recorder`] and compare
//! exact rendered lines.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::*;
use crate::channel::{AbortCause, CloseReason, Limit, Protocol, ProtocolErrorKind, Side, Stat};
use crate::proto::fastcgi::ProtocolStatus;

const FCGI: &str = "fastcgi:127.0.0.1:9000";
const SCGI: &str = "scgi:unix:/run/ringgate/scgi.sock";

fn listeners() -> ListenerNames {
    let mut names = ListenerNames::new();
    names.add(FCGI);
    names.add(SCGI);
    names
}

/// The protocols of [`listeners`].
const SERVED: &[Protocol] = &[Protocol::FastCgi, Protocol::Scgi];

/// Runs `f` on worker 3's metrics with a fresh local recorder current (so lazily registered
/// labels land there too) and returns the exposition.
fn render_after(f: impl FnOnce(&WorkerMetrics)) -> String {
    let recorder = Recorder::new();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe();
        f(&WorkerMetrics::new(3, &listeners(), SERVED));
    });
    handle.render()
}

#[track_caller]
fn assert_lines(rendered: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            rendered.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{rendered}"
        );
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn label_enums_index_in_all_order() {
    for (i, v) in Protocol::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i);
    }
    for (i, v) in AbortCause::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i);
    }
    for (i, v) in Side::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i);
    }
    for (i, v) in CloseReason::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i);
    }
    for (i, v) in SendMode::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i);
    }
    for (i, v) in SlabKind::ALL.iter().enumerate() {
        assert_eq!(*v as usize, i);
    }
}

#[test]
fn aborts_count_by_cause() {
    let out = render_after(|m| {
        let stat = Stat::Aborted {
            protocol: Protocol::FastCgi,
            cause: AbortCause::PeerAbort,
        };
        m.record(&stat);
        m.record(&stat);
        m.record(&Stat::Aborted {
            protocol: Protocol::Scgi,
            cause: AbortCause::Timeout,
        });
    });
    assert_lines(
        &out,
        &[
            "# TYPE ringgate_aborts_total counter",
            "# HELP ringgate_aborts_total Requests that ended without a complete response, by cause.",
            r#"ringgate_aborts_total{cause="peer_abort"} 2"#,
            r#"ringgate_aborts_total{cause="timeout"} 1"#,
            r#"ringgate_aborts_total{cause="shutdown"} 0"#,
        ],
    );
}

#[test]
fn a_request_counts_start_finish_duration_and_ttfb() {
    let out = render_after(|m| {
        m.record(&Stat::RequestStarted {
            protocol: Protocol::FastCgi,
        });
        m.record(&Stat::FirstByte {
            protocol: Protocol::FastCgi,
            latency: ms(3),
        });
        m.record(&Stat::RequestFinished {
            protocol: Protocol::FastCgi,
            status: 404,
            duration: ms(200),
        });
        m.record(&Stat::RequestStarted {
            protocol: Protocol::Scgi,
        });
        m.record(&Stat::RequestFinished {
            protocol: Protocol::Scgi,
            status: 204,
            duration: ms(40),
        });
    });
    assert_lines(
        &out,
        &[
            r#"ringgate_requests_started_total{protocol="fastcgi"} 1"#,
            r#"ringgate_requests_started_total{protocol="scgi"} 1"#,
            r#"ringgate_requests_finished_total{protocol="fastcgi",status_class="4xx"} 1"#,
            r#"ringgate_requests_finished_total{protocol="fastcgi",status_class="2xx"} 0"#,
            r#"ringgate_requests_finished_total{protocol="scgi",status_class="2xx"} 1"#,
            "# TYPE ringgate_request_duration_seconds histogram",
            r#"ringgate_request_duration_seconds_bucket{protocol="fastcgi",le="0.1"} 0"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="fastcgi",le="0.25"} 1"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="fastcgi",le="+Inf"} 1"#,
            r#"ringgate_request_duration_seconds_sum{protocol="fastcgi"} 0.2"#,
            r#"ringgate_request_duration_seconds_count{protocol="fastcgi"} 1"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="0.025"} 0"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="0.05"} 1"#,
            r#"ringgate_time_to_first_byte_seconds_bucket{protocol="fastcgi",le="0.0025"} 0"#,
            r#"ringgate_time_to_first_byte_seconds_bucket{protocol="fastcgi",le="0.005"} 1"#,
            r#"ringgate_time_to_first_byte_seconds_bucket{protocol="fastcgi",le="30"} 1"#,
            r#"ringgate_time_to_first_byte_seconds_count{protocol="fastcgi"} 1"#,
        ],
    );
}

#[test]
fn half_closes_stalls_and_fastcgi_management_records() {
    let out = render_after(|m| {
        m.record(&Stat::HalfClose {
            protocol: Protocol::Scgi,
            side: Side::Write,
        });
        m.record(&Stat::HalfClose {
            protocol: Protocol::FastCgi,
            side: Side::Read,
        });
        m.record(&Stat::ProducerStall { duration: ms(50) });
        m.record(&Stat::ProducerStall { duration: ms(2000) });
        m.record(&Stat::InputStall {
            duration: Duration::from_micros(50),
        });
        m.record(&Stat::GetValuesServed);
        m.record(&Stat::UnknownTypeSent);
        m.record(&Stat::UnknownTypeSent);
        for _ in 0..3 {
            m.record(&Stat::Refused {
                status: ProtocolStatus::OVERLOADED,
            });
        }
        m.record(&Stat::Refused {
            status: ProtocolStatus::UNKNOWN_ROLE,
        });
        m.record(&Stat::Refused {
            status: ProtocolStatus(9),
        });
        m.record(&Stat::ConnectionConcurrency { in_flight: 3 });
        m.record(&Stat::ConnectionConcurrency { in_flight: 1000 });
    });
    assert_lines(
        &out,
        &[
            r#"ringgate_half_closes_total{side="write",protocol="scgi"} 1"#,
            r#"ringgate_half_closes_total{side="read",protocol="fastcgi"} 1"#,
            r#"ringgate_half_closes_total{side="write",protocol="fastcgi"} 0"#,
            "ringgate_producer_stalls_total 2",
            r#"ringgate_producer_stall_seconds_bucket{le="0.05"} 1"#,
            r#"ringgate_producer_stall_seconds_bucket{le="2.5"} 2"#,
            "ringgate_producer_stall_seconds_sum 2.05",
            "ringgate_producer_stall_seconds_count 2",
            "ringgate_input_stalls_total 1",
            r#"ringgate_input_stall_seconds_bucket{le="0.0001"} 1"#,
            "ringgate_fastcgi_get_values_total 1",
            "ringgate_fastcgi_unknown_type_total 2",
            r#"ringgate_fastcgi_refusals_total{protocol_status="overloaded"} 3"#,
            r#"ringgate_fastcgi_refusals_total{protocol_status="unknown_role"} 1"#,
            r#"ringgate_fastcgi_refusals_total{protocol_status="cant_mpx_conn"} 0"#,
            r#"ringgate_fastcgi_refusals_total{protocol_status="other"} 1"#,
            r#"ringgate_connection_requests_in_flight_bucket{le="2"} 0"#,
            r#"ringgate_connection_requests_in_flight_bucket{le="4"} 1"#,
            r#"ringgate_connection_requests_in_flight_bucket{le="256"} 1"#,
            r#"ringgate_connection_requests_in_flight_bucket{le="+Inf"} 2"#,
        ],
    );
}

#[test]
fn every_limit_and_protocol_error_has_its_series_from_the_start() {
    let out = render_after(|m| {
        let bad = Stat::ProtocolError {
            protocol: Protocol::FastCgi,
            kind: ProtocolErrorKind::BadRecord,
        };
        m.record(&bad);
        m.record(&bad);
        m.record(&Stat::LimitHit {
            limit: Limit::MaxParamsBytes,
        });
    });
    assert_lines(
        &out,
        &[
            r#"ringgate_protocol_errors_total{protocol="fastcgi",kind="bad_record"} 2"#,
            r#"ringgate_protocol_errors_total{protocol="scgi",kind="bad_scgi_header"} 0"#,
            r#"ringgate_limit_hits_total{limit="max_params_bytes"} 1"#,
            r#"ringgate_limit_hits_total{limit="max_in_flight"} 0"#,
        ],
    );
    let limits = out
        .lines()
        .filter(|l| l.starts_with("ringgate_limit_hits_total{"))
        .count();
    assert_eq!(limits, Limit::ALL.len());
    let kinds = out
        .lines()
        .filter(|l| l.starts_with(r#"ringgate_protocol_errors_total{protocol="fastcgi""#))
        .count();
    assert_eq!(kinds, ProtocolErrorKind::ALL.len());
    // Not served, so no series at all.
    assert!(!out.contains(r#"protocol="cgi""#), "{out}");
}

#[test]
fn connections_bytes_sends_and_slabs() {
    let mut names = listeners();
    let (fcgi, scgi) = (names.add(FCGI), names.add(SCGI));
    let out = render_after(|m| {
        m.connection_accepted(fcgi);
        m.connection_accepted(fcgi);
        m.connection_accepted(scgi);
        m.connection_closed(fcgi, CloseReason::PeerClosed);
        m.bytes_received(1000);
        m.bytes_received(24);
        m.bytes_sent(1 << 20);
        m.send(SendMode::Direct);
        m.send(SendMode::Epoll);
        m.send(SendMode::Epoll);
        m.zerocopy_copied();
        m.buffer_pool_exhausted();
        m.recv_buffers_exhausted();
        m.set_slab(SlabKind::Requests, 10, 1024);
        m.set_slab(SlabKind::Requests, 12, 1024);
        m.set_slab(SlabKind::Connections, 3, 4096);
        m.request_in_flight_delta(1.0);
        m.request_in_flight_delta(2.0);
        m.request_in_flight_delta(-1.0);
    });
    assert_lines(
        &out,
        &[
            r#"ringgate_connections_accepted_total{listener="fastcgi:127.0.0.1:9000"} 2"#,
            r#"ringgate_connections_accepted_total{listener="scgi:unix:/run/ringgate/scgi.sock"} 1"#,
            r#"ringgate_connections_active{listener="fastcgi:127.0.0.1:9000"} 1"#,
            r#"ringgate_connections_active{listener="scgi:unix:/run/ringgate/scgi.sock"} 1"#,
            r#"ringgate_connections_closed_total{reason="peer_closed"} 1"#,
            r#"ringgate_connections_closed_total{reason="overloaded"} 0"#,
            "ringgate_received_bytes_total 1024",
            "ringgate_sent_bytes_total 1048576",
            r#"ringgate_sends_total{mode="direct"} 1"#,
            r#"ringgate_sends_total{mode="ring"} 0"#,
            r#"ringgate_sends_total{mode="epoll"} 2"#,
            "ringgate_zerocopy_copied_total 1",
            "ringgate_buffer_pool_exhausted_total 1",
            "ringgate_recv_buffers_exhausted_total 1",
            r#"ringgate_slab_entries{worker="3",kind="requests"} 12"#,
            r#"ringgate_slab_capacity{worker="3",kind="requests"} 1024"#,
            r#"ringgate_slab_entries{worker="3",kind="connections"} 3"#,
            r#"ringgate_slab_capacity{worker="3",kind="connections"} 4096"#,
            "ringgate_requests_in_flight 2",
        ],
    );
}

#[test]
fn workers_share_series_except_the_slab_gauges() {
    let recorder = Recorder::new();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let names = listeners();
        let (w0, w1) = (
            WorkerMetrics::new(0, &names, &Protocol::ALL),
            WorkerMetrics::new(1, &names, &Protocol::ALL),
        );
        w0.record(&Stat::RequestStarted {
            protocol: Protocol::Cgi,
        });
        w1.record(&Stat::RequestStarted {
            protocol: Protocol::Cgi,
        });
        w0.set_slab(SlabKind::Connections, 5, 100);
        w1.set_slab(SlabKind::Connections, 7, 100);
    });
    assert_lines(
        &handle.render(),
        &[
            r#"ringgate_requests_started_total{protocol="cgi"} 2"#,
            r#"ringgate_slab_entries{worker="0",kind="connections"} 5"#,
            r#"ringgate_slab_entries{worker="1",kind="connections"} 7"#,
        ],
    );
}

#[test]
fn histograms_sum_every_worker_and_name_each_family_once() {
    let recorder = Recorder::new();
    let handle = recorder.handle();
    let names = listeners();
    let record = |worker: usize, ms_each: &[u64]| {
        let m =
            metrics::with_local_recorder(&recorder, || WorkerMetrics::new(worker, &names, SERVED));
        for &n in ms_each {
            m.record(&Stat::RequestFinished {
                protocol: Protocol::Scgi,
                status: 200,
                duration: ms(n),
            });
        }
        m
    };
    metrics::with_local_recorder(&recorder, describe);
    // Each worker on its own thread, as in the server; their handles live on meanwhile.
    let (w0, w1) = std::thread::scope(|s| {
        let a = s.spawn(|| record(0, &[1, 1, 100]));
        let b = s.spawn(|| record(1, &[1, 5000, 60_000]));
        (a.join().unwrap(), b.join().unwrap())
    });
    let out = handle.render();
    assert_lines(
        &out,
        &[
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="0.0005"} 0"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="0.001"} 3"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="0.1"} 4"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="5"} 5"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="30"} 5"#,
            r#"ringgate_request_duration_seconds_bucket{protocol="scgi",le="+Inf"} 6"#,
            r#"ringgate_request_duration_seconds_count{protocol="scgi"} 6"#,
            r#"ringgate_request_duration_seconds_count{protocol="fastcgi"} 0"#,
        ],
    );
    let sum: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix(r#"ringgate_request_duration_seconds_sum{protocol="scgi"} "#))
        .unwrap()
        .parse()
        .unwrap();
    assert!((sum - 65.103).abs() < 1e-9, "{sum}");
    let present = names::ALL
        .iter()
        .filter(|d| out.contains(&format!("\n{}", d.name)));
    for def in present {
        for header in ["# HELP", "# TYPE"] {
            let n = out
                .lines()
                .filter(|l| l.starts_with(&format!("{header} {} ", def.name)))
                .count();
            assert_eq!(n, 1, "{header} {}", def.name);
        }
    }
    drop((w0, w1));
}

#[test]
fn histogram_buckets_are_less_or_equal_and_cumulative() {
    let out = render_after(|m| {
        // Exactly on a bound: counted in that bucket.
        m.record(&Stat::InputStall {
            duration: Duration::from_micros(250),
        });
        m.record(&Stat::ConnectionConcurrency { in_flight: 16 });
        m.record(&Stat::ConnectionConcurrency { in_flight: 17 });
    });
    assert_lines(
        &out,
        &[
            r#"ringgate_input_stall_seconds_bucket{le="0.0001"} 0"#,
            r#"ringgate_input_stall_seconds_bucket{le="0.00025"} 1"#,
            r#"ringgate_input_stall_seconds_bucket{le="+Inf"} 1"#,
            "ringgate_input_stall_seconds_sum 0.00025",
            "ringgate_input_stall_seconds_count 1",
            r#"ringgate_connection_requests_in_flight_bucket{le="8"} 0"#,
            r#"ringgate_connection_requests_in_flight_bucket{le="16"} 1"#,
            r#"ringgate_connection_requests_in_flight_bucket{le="32"} 2"#,
            "ringgate_connection_requests_in_flight_sum 33",
            "ringgate_connection_requests_in_flight_count 2",
        ],
    );
}

#[test]
fn a_histogram_outside_names_goes_to_the_exporter() {
    let recorder = Recorder::new();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        metrics::histogram!("not_ringgate_seconds").record(0.5);
    });
    let out = handle.render();
    assert_lines(&out, &["# TYPE not_ringgate_seconds summary"]);
}

/// The metric a rendered series belongs to (a histogram's `_bucket`, `_sum`, `_count` included).
fn metric_of(series: &str) -> Option<&'static names::MetricDef> {
    names::find(series).or_else(|| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| series.strip_suffix(s).and_then(names::find))
            .filter(|d| matches!(d.kind, names::MetricKind::Histogram(_)))
    })
}

#[test]
fn every_defined_metric_is_registered_with_its_labels() {
    let out = render_after(|_| {
        set_build_info("kv", "1.2.3");
        set_io_backend(IoBackend::Epoll);
        // The CGI executor's handles (a built-in application's, made per worker too).
        let cgi = super::CgiMetrics::new();
        cgi.spawned(0.001);
        cgi.queue_wait(0.0);
    });
    for def in names::ALL {
        let series: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.split(['{', ' '])
                    .next()
                    .and_then(metric_of)
                    .map(|d| d.name)
                    == Some(def.name)
            })
            .collect();
        assert!(
            !series.is_empty(),
            "{} is never registered:\n{out}",
            def.name
        );
        for line in series {
            let labels = line
                .split_once('{')
                .map_or("", |(_, rest)| rest.split_once('}').unwrap().0);
            let keys: Vec<&str> = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| l.split_once('=').unwrap().0)
                .filter(|k| *k != "le")
                .collect();
            assert_eq!(keys, def.labels, "{line}");
        }
        assert!(
            out.contains(&format!("# HELP {} {}\n", def.name, def.help)),
            "{}",
            def.name
        );
    }
    assert_lines(
        &out,
        &[
            &format!(
                r#"ringgate_build_info{{application="kv",version="1.2.3",ringgate_version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
            r#"ringgate_io_backend{backend="epoll"} 1"#,
            r#"ringgate_io_backend{backend="io_uring"} 0"#,
        ],
    );
}

#[test]
fn disabled_registers_and_records_nothing() {
    let recorder = Recorder::new();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let m = WorkerMetrics::disabled();
        m.record(&Stat::RequestStarted {
            protocol: Protocol::FastCgi,
        });
        m.record(&Stat::ProtocolError {
            protocol: Protocol::FastCgi,
            kind: ProtocolErrorKind::BadRecord,
        });
        m.record(&Stat::LimitHit {
            limit: Limit::MaxInFlight,
        });
        m.connection_accepted(listeners().add(FCGI));
        m.set_slab(SlabKind::Requests, 1, 2);
        m.request_in_flight_delta(1.0);
    });
    let out = handle.render();
    assert!(!out.contains("ringgate_"), "{out}");
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The only test that installs the global recorder (it can be done once per process).
#[test]
fn install_serves_metrics_over_http() {
    let addr = {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        probe.local_addr().unwrap()
    };
    let handle = install(Some(addr)).unwrap();
    set_io_backend(IoBackend::IoUring);
    let m = WorkerMetrics::new(0, &listeners(), SERVED);
    m.record(&Stat::Aborted {
        protocol: Protocol::FastCgi,
        cause: AbortCause::ConnectionLost,
    });
    m.record(&Stat::ProtocolError {
        protocol: Protocol::Scgi,
        kind: ProtocolErrorKind::BadScgiHeader,
    });

    let response = http_get(addr, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let expected = [
        r#"ringgate_aborts_total{cause="connection_lost"} 1"#,
        r#"ringgate_protocol_errors_total{protocol="scgi",kind="bad_scgi_header"} 1"#,
        r#"ringgate_io_backend{backend="io_uring"} 1"#,
        "# TYPE ringgate_request_duration_seconds histogram",
    ];
    assert_lines(body, &expected);
    assert_lines(&handle.render(), &expected);
    assert!(http_get(addr, "/health").ends_with("\r\n\r\nOK"));
    assert!(matches!(install(None), Err(InstallError::AlreadyInstalled)));
}
