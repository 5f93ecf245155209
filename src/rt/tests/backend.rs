//! The io backend choice, with io_uring really failing: a seccomp filter (the mechanism
//! Docker's default profile uses) makes `io_uring_setup` return EPERM or ENOSYS on one
//! thread.

use crate::rt::backend::{self, Backend, BackendError, IoMode, UnavailableCause, WorkerRuntime};

#[test]
fn auto_picks_uring_on_this_machine() {
    let r = backend::resolve(IoMode::Auto).unwrap();
    if super::support::uring_expected() {
        assert_eq!(r.backend, Backend::Uring, "fallback: {:?}", r.fallback);
        assert!(r.fallback.is_none());
        assert_eq!(r.worker_mode(), IoMode::Auto);
    } else {
        assert_eq!(r.backend, Backend::Epoll);
        assert!(r.fallback.is_some());
    }
}

#[test]
fn forced_epoll_never_touches_io_uring() {
    let r = backend::resolve(IoMode::Epoll).unwrap();
    assert_eq!(r.backend, Backend::Epoll);
    assert_eq!(r.worker_mode(), IoMode::Epoll);
    let (rt, why) = WorkerRuntime::new(IoMode::Epoll).unwrap();
    assert_eq!(rt.backend(), Backend::Epoll);
    assert!(why.is_none());
}

/// Run `f` on a new thread whose `io_uring_setup` fails with `errno`.
fn on_denied_thread<T: Send + 'static>(errno: i32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        super::support::deny_io_uring_setup(errno).expect("install seccomp filter");
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn blocked_io_uring_falls_back_in_auto_and_fails_when_required() {
    let (auto_backend, auto_cause, works, forced) = on_denied_thread(libc::EPERM, || {
        let (rt, why) = WorkerRuntime::new(IoMode::Auto).unwrap();
        let works = rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = l.local_addr().unwrap();
            let c = tokio::task::spawn_local(tokio::net::TcpStream::connect(a));
            l.accept().await.is_ok() && c.await.unwrap().is_ok()
        });
        let forced = match WorkerRuntime::new(IoMode::Uring) {
            Err(BackendError::UringRequired(u)) => Some((u.cause, u.to_string())),
            _ => None,
        };
        (rt.backend(), why.map(|w| w.cause), works, forced)
    });
    assert_eq!(auto_backend, Backend::Epoll);
    assert_eq!(auto_cause, Some(UnavailableCause::Blocked));
    assert!(works, "the epoll fallback serves connections");
    let (cause, msg) = forced.expect("--io uring must fail");
    assert_eq!(cause, UnavailableCause::Blocked);
    assert!(msg.contains("seccomp"), "{msg}");
}

#[test]
fn kernel_without_io_uring_is_reported_as_such() {
    let cause = on_denied_thread(libc::ENOSYS, || {
        backend::resolve(IoMode::Auto)
            .unwrap()
            .fallback
            .map(|f| f.cause)
    });
    assert_eq!(cause, Some(UnavailableCause::NotSupported));
    let err = on_denied_thread(libc::ENOSYS, || {
        backend::resolve(IoMode::Uring).err().map(|e| e.to_string())
    });
    assert!(err.expect("must fail").contains("no io_uring"));
}
