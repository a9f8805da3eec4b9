//! A trader's strategies. A strategy is a name plus a list of immutable versions; saving changed source adds
//! a version, so a run always points at the exact source it ran. Source that does not compile is never a
//! version: it is kept as the strategy's draft (so the trader does not lose the edit) until fixed or dropped.

use chrono::{DateTime, Utc};
use engine::strategy::ParamInfo;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Error, compile};

mod edit;
pub use edit::*;

/// Longest strategy name (characters).
pub const MAX_NAME: usize = 80;
/// The [`Error::Conflict`] message of a save refused because another tab wrote the draft meanwhile.
pub const STALE_DRAFT: &str = "the draft was changed in another tab or window after this page was opened; \
     reload to see it (this edit was not stored)";
/// The refusal of an edit of an archived strategy ([`Error::Conflict`]).
pub const ARCHIVED: &str = "this strategy is archived; restore it before editing";
/// Longest description (characters).
pub const MAX_DESCRIPTION: usize = 2000;

/// A strategy in a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StrategySummary {
    pub strategy_id: Uuid,
    pub name: String,
    pub description: String,
    pub template: Option<String>,
    pub latest_version: i32,
    pub archived: bool,
    pub has_draft: bool,
    pub runs: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One saved version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub strategy_version_id: Uuid,
    pub strategy_id: Uuid,
    pub version: i32,
    pub source: String,
    pub source_hash: String,
    pub params: Vec<ParamInfo>,
    pub created_at: DateTime<Utc>,
}

/// A strategy with its newest version, its draft and the list of versions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StrategyDetail {
    pub summary: StrategySummary,
    pub latest: Version,
    pub draft_source: Option<String>,
    /// The draft slot's revision: bumped by every write of the draft; a save carries the one its page showed
    /// ([`SaveStrategy::draft_rev`]).
    pub draft_rev: i32,
    /// `(version, created_at)`, newest first.
    pub versions: Vec<(i32, DateTime<Utc>)>,
    /// The enforced plan overage that makes it read-only (the user is over the plan's `strategies` past the
    /// grace period and this is one of the newest beyond the limit), if any.
    #[serde(default)]
    pub read_only: Option<crate::plans::overage::Overage>,
}

/// What a new strategy starts from.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewStrategy {
    /// Defaults to the template's name, or "Untitled strategy".
    pub name: Option<String>,
    pub description: Option<String>,
    /// A catalogue template (`sma_cross`, `macd`, …); ignored when `source` is given.
    pub template: Option<String>,
    pub source: Option<String>,
}

/// An edit.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SaveStrategy {
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    /// The version the edit was based on; a save based on an older one is refused (someone saved meanwhile).
    pub base_version: Option<i32>,
    /// The draft revision the edit's page showed ([`StrategyDetail::draft_rev`]). A refused edit is kept as
    /// the draft only when this is still the current revision, so a refused save from a stale page never
    /// overwrites a newer draft (`None`, for API clients that do not send it: the last write wins).
    #[serde(default)]
    pub draft_rev: Option<i32>,
}

/// What a save did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Saved {
    pub version: i32,
    /// Whether the save added a version (false when only the name or description changed).
    pub new_version: bool,
}

/// Checks a source: its declared parameters, or every problem.
///
/// # Errors
/// [`Error::Strategy`].
pub fn validate(source: &str) -> Result<Vec<ParamInfo>, Error> {
    Ok(compile(source, &[])?.params().to_vec())
}

pub(super) fn clean_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name", "give the strategy a name"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::invalid(
            "name",
            format!("at most {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

pub(super) fn clean_description(d: &str) -> Result<String, Error> {
    let d = d.trim();
    if d.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(Error::invalid(
            "description",
            "must not contain control characters",
        ));
    }
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(d.to_owned())
}

/// Refuses source text that cannot be stored or compiled at all: too long, or with a NUL character.
pub(super) fn check_source_text(src: &str) -> Result<(), Error> {
    let max = engine::strategy::limits::MAX_SOURCE_BYTES;
    if src.len() > max {
        return Err(Error::invalid(
            "source",
            format!("the source is {} bytes; the limit is {max}", src.len()),
        ));
    }
    if let Some(at) = src.find('\0') {
        let line = src[..at].matches('\n').count() + 1;
        return Err(Error::invalid(
            "source",
            format!("line {line} contains a NUL character; remove it"),
        ));
    }
    Ok(())
}

/// The source a strategy "from scratch" starts with: valid, small, and showing each part of the language.
pub fn blank_source() -> &'static str {
    "# A new strategy. Declare parameters, name series, then write entry and exit rules.\n\
     param fast: int = 10 in 2..100\n\
     param slow: int = 30 in 5..400\n\
     \n\
     let fast_ma = sma(close, fast)\n\
     let slow_ma = sma(close, slow)\n\
     \n\
     entry long when crosses_above(fast_ma, slow_ma)\n\
     exit long when crosses_below(fast_ma, slow_ma)\n"
}

pub(super) async fn insert_version(
    conn: &mut sqlx::PgConnection,
    strategy_id: Uuid,
    version: i32,
    compiled: &engine::strategy::CompiledStrategy,
) -> Result<(), Error> {
    sqlx::query!(
        r#"insert into strategy_version (strategy_version_id, strategy_id, version, source, source_hash, params)
           values ($1, $2, $3, $4, $5, $6)"#,
        Uuid::new_v4(),
        strategy_id,
        version,
        compiled.source(),
        compiled.source_hash(),
        Json(compiled.params()) as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The strategies as [`StrategySummary`]s, `$tail` (the `where …` and anything after it) appended to the select.
macro_rules! select_summaries {
    ($tail:literal, $($arg:expr),+ $(,)?) => {
        sqlx::query_as!(
            StrategySummary,
            r#"
    select s.strategy_id, s.name, s.description, s.template, s.latest_version,
           s.archived_at is not null as "archived!", s.draft_source is not null as "has_draft!",
           s.created_at, s.updated_at,
           (select count(*) from backtest_run r where r.strategy_id = s.strategy_id) as "runs!"
    from strategy s"# + $tail,
            $($arg),+
        )
    };
}

/// The user's strategies, most recently changed first.
///
/// # Errors
/// Database errors.
pub async fn list(
    db: &PgPool,
    user: Uuid,
    include_archived: bool,
) -> Result<Vec<StrategySummary>, Error> {
    Ok(select_summaries!(
        " where s.user_id = $1 and ($2 or s.archived_at is null) order by s.updated_at desc, s.name",
        user,
        include_archived,
    )
    .fetch_all(db)
    .await?)
}

/// One strategy with its newest version.
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn get(db: &PgPool, user: Uuid, id: Uuid) -> Result<StrategyDetail, Error> {
    let summary = select_summaries!(" where s.user_id = $1 and s.strategy_id = $2", user, id)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound)?;
    let draft = sqlx::query!(
        "select draft_source, draft_rev from strategy where strategy_id = $1",
        id,
    )
    .fetch_one(db)
    .await?;
    let latest = version(db, user, id, None).await?;
    let versions = sqlx::query!(
        "select version, created_at from strategy_version where strategy_id = $1 order by version desc",
        id,
    )
    .fetch_all(db)
    .await?;
    let read_only =
        crate::plans::overage::strategy_restriction(&mut *db.acquire().await?, id).await?;
    Ok(StrategyDetail {
        read_only,
        summary,
        latest,
        draft_source: draft.draft_source,
        draft_rev: draft.draft_rev,
        versions: versions
            .into_iter()
            .map(|v| (v.version, v.created_at))
            .collect(),
    })
}

/// A version of the user's strategy (`None` = the newest).
///
/// # Errors
/// [`Error::NotFound`], database errors.
pub async fn version(
    db: &PgPool,
    user: Uuid,
    strategy_id: Uuid,
    version: Option<i32>,
) -> Result<Version, Error> {
    let r = sqlx::query!(
        r#"select v.strategy_version_id, v.strategy_id, v.version, v.source, v.source_hash,
                  v.params as "params: Json<Vec<ParamInfo>>", v.created_at
           from strategy_version v join strategy s using (strategy_id)
           where s.user_id = $1 and v.strategy_id = $2 and v.version = coalesce($3, s.latest_version)"#,
        user,
        strategy_id,
        version,
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(Version {
        strategy_version_id: r.strategy_version_id,
        strategy_id: r.strategy_id,
        version: r.version,
        source: r.source,
        source_hash: r.source_hash,
        params: r.params.0,
        created_at: r.created_at,
    })
}
