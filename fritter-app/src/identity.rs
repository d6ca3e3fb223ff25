//! Who you are: creating your identity and archive, its address, and your profile.

use std::fmt;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use fritter_common::archive::{Archive, EntryRef};
use fritter_common::crypto::KeyPair;
use fritter_common::model::{validate_file, ArchiveUrl, File, Profile};
use serde::Serialize;
use serde_json::Value;

use crate::compose::as_written;
use crate::output::{as_string, hex, Report};
use crate::App;

/// `fritter init`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    pub data_dir: PathBuf,
    pub profile: Value,
    #[serde(flatten)]
    pub entry: EntryRef,
}

/// `fritter url`.
#[derive(Debug, Serialize)]
pub struct OwnUrl {
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
}

/// `fritter profile`.
#[derive(Debug, Serialize)]
pub struct ProfileShown {
    /// The profile file's URL.
    #[serde(serialize_with = "as_string")]
    pub url: ArchiveUrl,
    pub profile: Value,
    #[serde(flatten)]
    pub entry: EntryRef,
    /// Whether this command changed it.
    pub updated: bool,
}

/// Creates an identity and an archive holding its profile; refuses if one exists.
pub fn init(app: &App, name: &str, bio: &str) -> anyhow::Result<Created> {
    if let Some(existing) = app.store.identity()? {
        bail!(
            "an identity already exists in {}: its archive is hyper://{}/; to create another, \
             pass another --data-dir",
            app.store.root().display(),
            existing.public()
        );
    }
    // Check the profile before anything is written, so a bad name leaves no half-made identity.
    let file = File::Profile(Profile {
        name: name.to_owned(),
        bio: bio.to_owned(),
        avatar: None,
    });
    let profile = as_written(&file)?;
    app.store.save_identity(&KeyPair::generate())?;
    let own = app.store.open_own()?;
    let entry = own.put_file(&file)?;
    Ok(Created {
        url: own.url(),
        data_dir: app.store.root().to_owned(),
        profile,
        entry,
    })
}

/// Your archive's address.
pub fn url(app: &App) -> anyhow::Result<OwnUrl> {
    Ok(OwnUrl {
        url: ArchiveUrl::root(app.own_key()?.into()),
    })
}

/// Shows your profile, or changes the fields given.
pub fn profile(
    app: &App,
    name: Option<String>,
    bio: Option<String>,
) -> anyhow::Result<ProfileShown> {
    let url = |archive: &Archive| ArchiveUrl::new(archive.key().into(), Profile::path());
    if name.is_none() && bio.is_none() {
        let own = crate::address::open_view(app, app.own_key()?)?;
        let (profile, entry) = read_profile(&own)?.ok_or_else(|| {
            anyhow!("your archive has no profile yet; set one with `fritter profile --name NAME`")
        })?;
        return Ok(ProfileShown {
            url: url(&own),
            profile: File::Profile(profile).to_value(),
            entry,
            updated: false,
        });
    }
    let own = app.store.open_own()?;
    profile_in(&own, name, bio)
}

/// Changes the fields given of `own`'s profile (`own` held open by the caller).
pub fn profile_in(
    own: &Archive,
    name: Option<String>,
    bio: Option<String>,
) -> anyhow::Result<ProfileShown> {
    let url = |archive: &Archive| ArchiveUrl::new(archive.key().into(), Profile::path());
    let mut profile = match read_profile(own)? {
        Some((profile, _)) => profile,
        None if name.is_some() => Profile {
            name: String::new(),
            bio: String::new(),
            avatar: None,
        },
        None => {
            bail!("your archive has no profile yet; give a name too: `fritter profile --name NAME`")
        }
    };
    if let Some(name) = name {
        profile.name = name;
    }
    if let Some(bio) = bio {
        profile.bio = bio;
    }
    let file = File::Profile(profile);
    let entry = own.put_file(&file)?;
    Ok(ProfileShown {
        url: url(own),
        profile: as_written(&file)?,
        entry,
        updated: true,
    })
}

/// The profile of an archive and the entry that wrote it, if it has one.
pub fn read_profile(archive: &Archive) -> anyhow::Result<Option<(Profile, EntryRef)>> {
    let Some(version) = archive.get(&Profile::path())? else {
        return Ok(None);
    };
    match validate_file(&version.path, &version.value)? {
        File::Profile(profile) => Ok(Some((profile, version.entry))),
        other => bail!("{} holds {other:?}, not a profile", version.path),
    }
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Created your archive: {}", self.url)?;
        writeln!(
            f,
            "Your identity and archive are kept in {}.",
            self.data_dir.display()
        )?;
        writeln!(f)?;
        writeln!(f, "Next:")?;
        writeln!(
            f,
            "  fritter post \"Hello #fritter\"       publish a status"
        )?;
        writeln!(f, "  fritter follow hyper://<key>/       follow someone; @names resolve against who you follow")?;
        writeln!(
            f,
            "  fritter url                         print your address, to share it"
        )
    }
}

impl Report for Created {}

impl fmt::Display for OwnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url)
    }
}

impl Report for OwnUrl {}

impl fmt::Display for ProfileShown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.updated {
            writeln!(
                f,
                "Updated your profile (entry {}, hash {})",
                self.entry.seq,
                hex(&self.entry.hash)
            )?;
        }
        let field = |name| {
            self.profile
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        writeln!(f, "Name: {}", field("name"))?;
        write!(f, "Bio:  {}", field("bio"))
    }
}

impl Report for ProfileShown {}
