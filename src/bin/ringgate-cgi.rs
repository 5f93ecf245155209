//! The demo application as a CGI/1.1 program: the request comes from the environment and
//! stdin, the response goes to stdout. Put it in a web server's `cgi-bin` to try
//! `ringgate::cgi::run` with any CGI-capable server.

fn main() -> std::io::Result<()> {
    ringgate::cgi::run(ringgate::app::demo::Demo)
}
