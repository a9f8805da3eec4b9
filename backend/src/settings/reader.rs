//! [`Reader`]: typed access to the variables, each problem recorded with the variable's name.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

use secrecy::SecretString;

use super::ConfigProblem;

/// Reads variables from a map and collects every problem instead of stopping at the first.
pub(super) struct Reader<'a> {
    pub(super) env: &'a HashMap<String, String>,
    pub(super) problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    pub(super) fn problem(&mut self, var: &str, msg: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable: var.into(),
            message: msg.into(),
        });
    }

    pub(super) fn raw(&self, var: &str) -> Option<String> {
        self.env
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    pub(super) fn parsed<T: FromStr>(&mut self, var: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(var) {
            None => default,
            Some(v) => match v.parse::<T>() {
                Ok(x) => x,
                Err(e) => {
                    self.problem(var, format!("invalid value `{v}`: {e}"));
                    default
                }
            },
        }
    }

    pub(super) fn bounded<T>(&mut self, var: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display,
        T::Err: fmt::Display,
    {
        let v = self.parsed(var, default);
        if v < min || v > max {
            self.problem(var, format!("must be between {min} and {max} (got {v})"));
            default
        } else {
            v
        }
    }

    pub(super) fn seconds(&mut self, var: &str, default: f64, min: f64, max: f64) -> Duration {
        Duration::from_secs_f64(self.bounded(var, default, min, max))
    }

    /// A secret from `VAR` or from the file named by `VAR_FILE`. Never echoes the value.
    pub(super) fn secret(&mut self, var: &str) -> Option<SecretString> {
        let file_var = format!("{var}_FILE");
        let direct = self.env.get(var).filter(|v| !v.is_empty()).cloned();
        let file = self.raw(&file_var);
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.problem(var, format!("set either {var} or {file_var}, not both"));
                None
            }
            (Some(v), None) => Some(SecretString::from(v)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(content) => {
                    // Files written by `echo` end in a newline; it is never part of the secret.
                    let value = content.trim_end_matches(['\r', '\n']).to_owned();
                    if value.is_empty() {
                        self.problem(&file_var, format!("file `{path}` is empty"));
                        None
                    } else {
                        Some(SecretString::from(value))
                    }
                }
                Err(e) => {
                    self.problem(
                        &file_var,
                        format!("cannot read file `{path}`: {}", e.kind()),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }
}
