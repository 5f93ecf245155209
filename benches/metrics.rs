//! What metrics cost per request: the three stats a typical request reports (RequestStarted,
//! FirstByte, RequestFinished) recorded through `WorkerMetrics` with the Prometheus recorder
//! (`on`), with `WorkerMetrics::disabled()` (`off`), and, for reference, with a registry lookup
//! per call through the `metrics` macros (what pre-registered handles avoid).
//!
//! With the recorder on, a background thread runs the exporter's upkeep every second as the
//! metrics thread does in production (ringgate's histograms keep no samples, so it has nothing
//! of theirs to drain; it stays so the figures include whatever the upkeep costs the recorder).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringgate::channel::{Protocol, Stat};
use ringgate::metrics::{names, ListenerNames, Recorder, WorkerMetrics};

fn request_stats() -> [Stat; 3] {
    [
        Stat::RequestStarted {
            protocol: Protocol::FastCgi,
        },
        Stat::FirstByte {
            protocol: Protocol::FastCgi,
            latency: Duration::from_micros(180),
        },
        Stat::RequestFinished {
            protocol: Protocol::FastCgi,
            status: 200,
            duration: Duration::from_micros(420),
        },
    ]
}

/// Runs `upkeep` every second until the returned guard is dropped.
struct Upkeep(Arc<AtomicBool>, Option<thread::JoinHandle<()>>);

impl Upkeep {
    fn start(upkeep: impl Fn() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let join = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_secs(1));
                upkeep();
            }
        });
        Self(stop, Some(join))
    }
}

impl Drop for Upkeep {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(join) = self.1.take() {
            let _ = join.join();
        }
    }
}

fn bench_request(c: &mut Criterion) {
    let stats = request_stats();
    let mut group = c.benchmark_group("request_stats");
    group.throughput(Throughput::Elements(1));

    let recorder = Recorder::new();
    let handle = recorder.handle();
    let on = metrics::with_local_recorder(&recorder, || {
        WorkerMetrics::new(0, &ListenerNames::new(), &Protocol::ALL)
    });
    {
        let handle = handle.clone();
        let _upkeep = Upkeep::start(move || handle.run_upkeep());
        group.bench_function("on", |b| {
            b.iter(|| {
                for s in black_box(&stats) {
                    on.record(s);
                }
            })
        });
    }
    // The samples really landed: the benchmark measured recording, not a no-op.
    let rendered = handle.render();
    let started = rendered
        .lines()
        .find(|l| l.starts_with(r#"ringgate_requests_started_total{protocol="fastcgi"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        started > 0,
        "recording with the recorder on counted nothing"
    );

    let off = WorkerMetrics::disabled();
    group.bench_function("off", |b| {
        b.iter(|| {
            for s in black_box(&stats) {
                off.record(s);
            }
        })
    });

    let lookup = Recorder::new();
    let lookup_handle = lookup.handle();
    let _upkeep = Upkeep::start(move || lookup_handle.run_upkeep());
    metrics::with_local_recorder(&lookup, || {
        group.bench_function("lookup_per_call", |b| {
            b.iter(|| {
                for s in black_box(&stats) {
                    match *s {
                        Stat::RequestStarted { protocol } => {
                            metrics::counter!(names::REQUESTS_STARTED_TOTAL, "protocol" => protocol.as_str())
                                .increment(1)
                        }
                        Stat::FirstByte { protocol, latency } => metrics::histogram!(
                            names::TIME_TO_FIRST_BYTE_SECONDS, "protocol" => protocol.as_str()
                        )
                        .record(latency.as_secs_f64()),
                        Stat::RequestFinished { protocol, status, duration } => {
                            let class = ringgate::metrics::STATUS_CLASSES
                                [ringgate::metrics::status_class_index(status)];
                            metrics::counter!(
                                names::REQUESTS_FINISHED_TOTAL,
                                "protocol" => protocol.as_str(),
                                "status_class" => class
                            )
                            .increment(1);
                            metrics::histogram!(
                                names::REQUEST_DURATION_SECONDS, "protocol" => protocol.as_str()
                            )
                            .record(duration.as_secs_f64());
                        }
                        _ => unreachable!("only the three request stats are benched"),
                    }
                }
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench_request);
criterion_main!(benches);
