//! The operating-system calls that need `unsafe`, each behind a safe function whose doc says
//! what it does and whose body says why the call is sound. Callers never hold raw pointers or
//! unchecked ids from here: a function takes plain integers and returns `io::Result`.
//!
//! So far: signals, reaping and the child-subreaper attribute ([`process`]), and a write
//! that never waits ([`io`]), for the CGI executor's processes. Other layers still make a few such calls in place (the runtime's
//! ring and socket calls, the listener's user lookups); they move here as they are touched.

pub(crate) mod io;
pub(crate) mod process;
