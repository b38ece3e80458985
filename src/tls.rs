//! The one TLS setup of this process: rustls with the `ring` provider.
//!
//! reqwest is built with `rustls-no-provider` (README, Design notes: no aws-lc C build on CI), so
//! a crypto provider must be installed before any `reqwest::Client` is built, or reqwest panics.
//! Every place that builds a client calls [`ensure_crypto_provider`] first; so do test harnesses.

/// Installs `ring` as rustls' process-wide provider; later calls (and a provider someone else
/// installed first) change nothing.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_once_the_provider_is_installed() {
        super::ensure_crypto_provider();
        super::ensure_crypto_provider();
        assert!(reqwest::Client::builder().build().is_ok());
    }
}
