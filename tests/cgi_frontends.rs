//! The CGI executor behind real nginx, configured with the snippets under `deploy/nginx/`
//! (only the addresses and paths changed): `git push` and `git clone` of a repository with a
//! 24 MB incompressible file over smart HTTP (nginx -> `ringgate --cgi /usr/lib/git-core` ->
//! git-http-backend), byte-exact; and a generic /cgi-bin/ with PATH_INFO.
//!
//! A missing nginx or git skips a test with a printed reason, except under `CI=true`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::frontend::*;
use support::*;

/// Starts nginx with `deploy/nginx/SNIPPET`, its text edited by `edits` (from, to).
fn nginx_with_snippet(server: &Server, snippet: &str, edits: &[(&str, String)]) -> FrontEnd {
    let dir = server
        .dir
        .join(format!("nginx-{}", snippet.trim_end_matches(".conf")));
    std::fs::create_dir_all(&dir).unwrap();
    for params in ["fastcgi_params", "scgi_params"] {
        std::fs::copy(Path::new("/etc/nginx").join(params), dir.join(params)).unwrap();
    }
    let mut text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/nginx")
            .join(snippet),
    )
    .unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{snippet} no longer contains {from:?}");
        text = text.replace(from, to);
    }
    std::fs::write(dir.join(snippet), text).unwrap();
    let http = free_port();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {d}/body;\nfastcgi_temp_path {d}/fastcgi;\n\
         scgi_temp_path {d}/scgi;\nproxy_temp_path {d}/proxy;\nuwsgi_temp_path {d}/uwsgi;\n\
         include {d}/{snippet};\n}}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main.replace("@HTTP@", &http.to_string())).unwrap();
    let child = Command::new(sbin("nginx"))
        .args([
            "-p",
            &format!("{d}/"),
            "-c",
            conf.to_str().unwrap(),
            "-e",
            "stderr",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("start nginx");
    wait_http(
        http_port(&text_port(edits)),
        "nginx",
        &dir.join("stderr.log"),
    );
    FrontEnd {
        child,
        http: http_port(&text_port(edits)),
        dir,
    }
}

/// The port the edits make nginx listen on.
fn text_port(edits: &[(&str, String)]) -> String {
    edits
        .iter()
        .find_map(|(from, to)| from.starts_with("listen").then(|| to.clone()))
        .expect("a listen edit")
}

fn http_port(listen: &str) -> u16 {
    listen
        .trim_end_matches(';')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn git(dir: &Path, home: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn git_push_and_clone_through_nginx_and_git_http_backend() {
    if !have("nginx") || !have("git") {
        return;
    }
    let backend = Path::new("/usr/lib/git-core/git-http-backend");
    if !backend.exists() {
        assert!(
            std::env::var("CI").is_err(),
            "git-http-backend is required under CI"
        );
        eprintln!("skipping: {} is missing", backend.display());
        return;
    }
    // The repositories' root is the operator's (ringgate's `--cgi-env`): ringgate takes no
    // GIT_* variable from a request.
    let tmp = temp_dir("git");
    let base = tmp.path().to_path_buf();
    let project_root = format!("GIT_PROJECT_ROOT={}", base.join("repos").display());
    let server = Server::start(
        "auto",
        &[
            "--cgi",
            "/usr/lib/git-core",
            "--cgi-timeout",
            "120s",
            "--cgi-env",
            &project_root,
            "--cgi-env",
            "GIT_HTTP_EXPORT_ALL=1",
        ],
    );
    let (repos, work, clone, home) = (
        base.join("repos"),
        base.join("work"),
        base.join("clone"),
        base.join("home"),
    );
    for d in [&repos, &work, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    git(&repos, &home, &["init", "--bare", "-q", "project.git"]);
    git(
        &repos.join("project.git"),
        &home,
        &["config", "http.receivepack", "true"],
    );

    let port = free_port();
    let front = nginx_with_snippet(
        &server,
        "ringgate-git.conf",
        &[
            ("listen 8081;", format!("listen 127.0.0.1:{port};")),
            (
                "unix:/run/ringgate/cgi.sock",
                format!("127.0.0.1:{}", server.fastcgi),
            ),
        ],
    );
    let url = format!("http://127.0.0.1:{}/git/project.git", front.http);

    let big = noise(24 << 20, 1);
    std::fs::write(work.join("big.bin"), &big).unwrap();
    std::fs::write(work.join("README"), "hello\n").unwrap();
    git(&work, &home, &["init", "-q"]);
    git(&work, &home, &["add", "."]);
    git(&work, &home, &["commit", "-q", "-m", "first"]);
    git(&work, &home, &["push", "-q", &url, "main"]);
    git(
        &base,
        &home,
        &["clone", "-q", &url, clone.to_str().unwrap()],
    );
    let cloned = std::fs::read(clone.join("big.bin")).unwrap();
    assert_eq!(cloned.len(), big.len());
    assert!(cloned == big, "the cloned file differs");
    git(&clone, &home, &["fsck", "--strict"]);
    server.wait_metric(r#"ringgate_cgi_scripts_ended_total{outcome="ok"}"#, |v| {
        v >= 4.0
    });
    drop(front);
}

/// A document root `www` (0755) with a `cgi-bin` holding each (name, text) as an executable
/// script; returns (www, cgi-bin), www removed when its guard drops.
fn cgi_bin_site(name: &str, scripts: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = temp_dir(name);
    let www = tmp.path();
    let bin = www.join("cgi-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in [www, bin.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (script, text) in scripts {
        std::fs::write(bin.join(script), text).unwrap();
        std::fs::set_permissions(bin.join(script), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (tmp, bin)
}

/// nginx with `deploy/nginx/ringgate-cgi-bin.conf` as shipped, in front of `server`'s FastCGI
/// port, serving `www`.
fn nginx_cgi_bin(server: &Server, www: &Path) -> FrontEnd {
    let port = free_port();
    nginx_with_snippet(
        server,
        "ringgate-cgi-bin.conf",
        &[
            ("listen 8082;", format!("listen 127.0.0.1:{port};")),
            (
                "unix:/run/ringgate/cgi.sock",
                format!("127.0.0.1:{}", server.fastcgi),
            ),
            ("root /srv/www;", format!("root {};", www.display())),
        ],
    )
}

#[test]
fn a_cgi_bin_behind_nginx() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let (www, bin) = cgi_bin_site(
        "cgi-www",
        &[
            (
                "hello.pl",
                "#!/usr/bin/perl\nprint \"Content-Type: text/plain\\n\\n\";\nprint \"PATH_INFO=$ENV{PATH_INFO}\\nQUERY=$ENV{QUERY_STRING}\\n\";\n",
            ),
            (
                "cat.sh",
                "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n",
            ),
        ],
    );
    let server = Server::start("auto", &["--cgi", bin.to_str().unwrap()]);
    let front = nginx_cgi_bin(&server, www.path());
    let (status, body) = curl(front.http, "/cgi-bin/hello.pl/extra/path?x=1", &[]);
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "PATH_INFO=/extra/path\nQUERY=x=1\n"
    );
    assert_eq!(curl(front.http, "/cgi-bin/missing.pl", &[]).0, 404);
    // A 32 MiB echo through nginx: the body is in before the head goes out.
    let data = noise(32 << 20, 1);
    let file = www.path().join("body.bin");
    std::fs::write(&file, &data).unwrap();
    let (status, echoed) = curl(
        front.http,
        "/cgi-bin/cat.sh",
        &["--data-binary", &format!("@{}", file.display())],
    );
    assert_eq!(status, 200);
    assert!(
        echoed == data,
        "the echo through nginx differs ({} bytes)",
        echoed.len()
    );
    assert_eq!(
        curl(
            front.http,
            "/cgi-bin/../cgi-bin/hello.pl",
            &["--path-as-is"]
        )
        .0,
        200
    );
    drop(front);
}

#[test]
fn a_client_that_leaves_ends_its_script_and_stderr_reaches_the_nginx_log() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let (www, bin) = cgi_bin_site(
        "cgi-leave",
        &[
            (
                "silent.sh",
                "#!/bin/sh\necho $$ > \"$DOCUMENT_ROOT/silent.pid\"\nexec sleep 1000\n",
            ),
            (
                "warn.sh",
                "#!/bin/sh\necho 'disk almost full' >&2\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n",
            ),
        ],
    );
    let server = Server::start(
        "auto",
        &[
            "--cgi",
            bin.to_str().unwrap(),
            "--cgi-timeout",
            "60s",
            "--cgi-kill-grace",
            "500ms",
            "--cgi-stderr",
            "fastcgi",
        ],
    );
    let front = nginx_cgi_bin(&server, www.path());
    let pid_file = www.path().join("silent.pid");
    // The client gives up after a second; nginx closes its FastCGI connection, and the
    // script, which never wrote a thing, must end with it.
    let gave_up = Command::new("curl")
        .args(["-sS", "--max-time", "1", "-o", "/dev/null"])
        .arg(format!("http://127.0.0.1:{}/cgi-bin/silent.sh", front.http))
        .status()
        .unwrap();
    assert_eq!(gave_up.code(), Some(28), "curl should time out");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the script outlived its client by 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.wait_metric(
        r#"ringgate_cgi_scripts_ended_total{outcome="killed_abort"}"#,
        |v| v >= 1.0,
    );
    // stderr as FCGI_STDERR: nginx writes it to its error log.
    assert_eq!(
        curl(front.http, "/cgi-bin/warn.sh", &[]),
        (200, b"ok\n".to_vec())
    );
    let log = std::fs::read_to_string(front.dir.join("error.log")).unwrap_or_default();
    assert!(
        log.contains("FastCGI sent in stderr") && log.contains("disk almost full"),
        "nginx's error log: {log}"
    );
    drop(front);
}
