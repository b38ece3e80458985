//! Facts about BitRouter 0.11.0's built-in providers: their names, wire protocols, base URLs and
//! env prefixes (`bitrouter-config/providers/*.yaml` in its source).
//!
//! Plain data that every other routing module reads; it imports nothing of `routing`, so the
//! config model, the resolver and the renderer can all depend on it without a circle.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
    Google,
}

/// A provider BitRouter 0.11.0 ships.
#[derive(Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub protocol: Protocol,
    pub api_base: &'static str,
    pub env_prefix: &'static str,
}

/// BitRouter 0.11.0's built-in providers (`bitrouter-config/providers/*.yaml`).
pub const BUILTINS: [Builtin; 4] = [
    Builtin {
        name: "openai",
        protocol: Protocol::OpenAi,
        api_base: "https://api.openai.com/v1",
        env_prefix: "OPENAI",
    },
    Builtin {
        name: "anthropic",
        protocol: Protocol::Anthropic,
        api_base: "https://api.anthropic.com",
        env_prefix: "ANTHROPIC",
    },
    Builtin {
        name: "google",
        protocol: Protocol::Google,
        api_base: "https://generativelanguage.googleapis.com",
        env_prefix: "GOOGLE",
    },
    Builtin {
        name: "openrouter",
        protocol: Protocol::OpenAi,
        api_base: "https://openrouter.ai/api/v1",
        env_prefix: "OPENROUTER",
    },
];

pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
