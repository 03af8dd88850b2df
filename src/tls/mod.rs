//! TLS with rustls (ring): client configurations for connections to servers (`client`), the
//! server configurations of `bind ... ssl` listeners built from certificate files (`acceptor`,
//! `certs`), and what a finished handshake tells the rules and the logs, under OpenSSL's names
//! as HAProxy shows them (`facts`).

mod acceptor;
mod certs;
mod client;
mod dn;
mod facts;
#[cfg(test)]
mod tests;
mod x509;

pub use acceptor::{in_base, Acceptor, BindTls, CertSource, ClientAuth, TlsTuning, TlsVersion};
pub(crate) use certs::{common_name_of, subject_issuer};
pub use certs::{load_chain, CertFile};
pub use client::{client_config, client_config_with_cert, ServerTls, Verify};
pub use dn::one_line;
pub use facts::{cipher_name, version_name, TlsFacts};
pub use x509::{describe, CertInfo};
