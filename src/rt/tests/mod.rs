//! The runtime's tests with real threads, sockets and rings: workers and the serving loop
//! ([`workers`]), and the io backend choice with io_uring really failing ([`backend`]).

mod backend;
mod support;
mod workers;
