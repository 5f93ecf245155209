//! Helpers for the runtime's tests: a seccomp filter that makes `io_uring_setup` fail the
//! way Docker's default profile does, and temporary directories. The integration tests'
//! harness (`tests/support/process.rs`) compiles this file too.

/// Whether io_uring is expected to work where the tests run (set
/// `RINGGATE_TEST_NO_URING=1` in containers that block it; the uring tests then check the
/// fallback instead of skipping).
pub(crate) fn uring_expected() -> bool {
    std::env::var_os("RINGGATE_TEST_NO_URING").is_none()
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// Install, on the calling thread only (no TSYNC), a seccomp filter that fails
/// `io_uring_setup` with `errno` and allows everything else. Safe to call between fork and
/// exec: it allocates nothing.
pub(crate) fn deny_io_uring_setup(errno: i32) -> std::io::Result<()> {
    let filter = [
        // A = seccomp_data.arch
        libc::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 4,
        },
        // another ABI: allow
        libc::sock_filter {
            code: BPF_JEQ_K,
            jt: 0,
            jf: 3,
            k: AUDIT_ARCH,
        },
        // A = seccomp_data.nr
        libc::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: BPF_JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | (errno as u32 & 0xffff),
        },
        libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl calls; `prog` points to `filter`, both alive for the call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A fresh directory for one test's socket files, removed when the guard drops.
pub(crate) fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ringgate-{name}-"))
        .tempdir()
        .unwrap()
}
