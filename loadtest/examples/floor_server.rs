//! The floor: the least a FastCGI server can do per request, to measure a gateway's costs
//! against. One thread, plain tokio (epoll); it walks record headers only (no params decoding,
//! no request model, no allocation per request) and answers every request with the same
//! canned `/hello` response (two STDOUT records and END_REQUEST) when its empty STDIN record
//! arrives, batching the answers of one read into one write.
//!
//! `cargo run --release -p ringgate-load --example floor_server -- 127.0.0.1:9600`

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HEADER: usize = 8;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const END_REQUEST: u8 = 3;
const RESPONSE: &[u8] =
    b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";

fn record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    let len = content.len() as u16;
    let pad = (8 - content.len() % 8) % 8;
    let [ih, il] = id.to_be_bytes();
    let [lh, ll] = len.to_be_bytes();
    out.extend_from_slice(&[1, kind, ih, il, lh, ll, pad as u8, 0]);
    out.extend_from_slice(content);
    out.extend_from_slice(&[0; 8][..pad]);
}

fn answer(out: &mut Vec<u8>, id: u16) {
    record(out, STDOUT, id, RESPONSE);
    record(out, STDOUT, id, &[]);
    record(out, END_REQUEST, id, &[0, 0, 0, 0, 0, 0, 0, 0]);
}

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(16 * 1024);
    let (mut have, mut skip) = (0usize, 0usize);
    loop {
        let n = stream.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut at = 0;
        loop {
            if skip > 0 {
                let s = skip.min(have - at);
                at += s;
                skip -= s;
                if skip > 0 {
                    break;
                }
            }
            if have - at < HEADER {
                break;
            }
            let h = &buf[at..at + HEADER];
            let id = u16::from_be_bytes([h[2], h[3]]);
            let len = u16::from_be_bytes([h[4], h[5]]) as usize;
            if h[1] == STDIN && len == 0 {
                answer(&mut out, id);
            }
            at += HEADER;
            skip = len + h[6] as usize;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9600".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("floor_server: FastCGI on {addr}");
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = serve(stream).await;
            });
        }
    })
}
