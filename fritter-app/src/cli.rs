//! The command line: every command and flag of `fritter`, with the help texts users read.

// The doc comments below are the terminal help texts, so they write `<key>` and `[path]` as a
// user reads them, not as rustdoc's HTML and links.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Fritter: a peer-to-peer microblog. Everything you write goes into your own signed archive,
/// `hyper://<key>/`, that only you can write and anyone can verify.
#[derive(Debug, Parser)]
#[command(name = "fritter", version, propagate_version = true)]
#[command(
    after_help = "Start with `fritter init --name NAME`, then `fritter post \"Hello #fritter\"`.\n\
Set RUST_LOG=debug for detailed logs on stderr."
)]
pub struct Cli {
    /// Data directory holding your identity and archives [default: $FRITTER_DATA_DIR, else
    /// $XDG_DATA_HOME/fritter, else ~/.local/share/fritter]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print one machine-readable JSON value on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `fritter`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create your identity and archive, with a profile
    Init {
        /// Your display name (1 to 64 characters)
        #[arg(long)]
        name: String,
        /// A short description of yourself (up to 512 characters)
        #[arg(long, default_value = "")]
        bio: String,
    },

    /// Print the address of your archive, to share with others
    Url,

    /// Show your profile, or change the fields given
    Profile {
        /// New display name
        #[arg(long)]
        name: Option<String>,
        /// New description of yourself (an empty string clears it)
        #[arg(long)]
        bio: Option<String>,
    },

    /// Publish a status; #tags and @mentions of people you follow are picked up from the text
    #[command(
        after_help = "Example: fritter post \"Lunch with @bob at the #café\"\n\
Text that starts with - goes after --: fritter post -- \"-5 degrees today\""
    )]
    Post {
        /// What to say (1 to 1000 characters)
        text: String,
    },

    /// Reply to a status of yours or of an archive held locally
    #[command(after_help = "Example: fritter reply hyper://<key>/statuses/<id>.json \"Agreed!\"")]
    Reply {
        /// The status answered: hyper://<key>/statuses/<id>.json, or /statuses/<id>.json for yours
        url: String,
        /// What to say (1 to 1000 characters; after --, if it starts with -)
        text: String,
    },

    /// Like a status (once; `fritter unlike` takes it back)
    Like {
        /// The status liked: hyper://<key>/statuses/<id>.json, or /statuses/<id>.json for yours
        url: String,
    },

    /// Take back a like
    Unlike {
        /// The status once liked
        url: String,
    },

    /// Delete a file of your archive; the history keeps that it existed
    Delete {
        /// A file of your archive: hyper://<your key>/statuses/<id>.json or /statuses/<id>.json
        url: String,
    },

    /// Follow an archive: its statuses go to your feed and @names resolve against it
    Follow {
        /// The archive: hyper://<key>/ or the bare 64-hex key
        url: String,
    },

    /// Stop following an archive
    Unfollow {
        /// The archive: hyper://<key>/ or the bare 64-hex key
        url: String,
    },

    /// Print a file as JSON
    #[command(
        after_help = "Examples: fritter show /profile.json\n          fritter show hyper://<key>/statuses/<id>.json"
    )]
    Show {
        /// A path in your archive (/profile.json) or the URL of a file of any archive held locally
        path: String,
    },

    /// List the files under a folder
    Ls {
        /// A folder of your archive (/statuses) or of any archive held locally (hyper://<key>/)
        #[arg(default_value = "/")]
        path: String,
    },

    /// Show the history of an archive: every write and delete, with its entry hash
    Log {
        /// Only entries touching this path; or hyper://<key>/[path] for an archive held locally
        path: Option<String>,
    },

    /// Save your secret key and archive to a file, to move machines or keep a backup
    Export {
        /// The backup file to write; it holds your secret key, so keep it private
        file: PathBuf,
        /// Replace the file if it exists
        #[arg(long)]
        force: bool,
    },

    /// Restore an identity and archive from a backup into an empty data directory
    Import {
        /// A file written by `fritter export`
        file: PathBuf,
    },

    /// Run your node and its web app: your archive and the ones you follow, kept in sync live
    #[command(
        after_help = "Open the printed address in a browser. While it runs, the other commands act through it.\n\
Example: fritter serve --http 127.0.0.1:8473 --peer 192.168.1.20:7800"
    )]
    Serve {
        /// Address of the web app and its JSON API (keep it on 127.0.0.1: it shows your feed)
        #[arg(long, value_name = "HOST:PORT", default_value = crate::serve::DEFAULT_HTTP)]
        http: SocketAddr,
        #[command(flatten)]
        net: NetArgs,
        /// A crawler to ask for whole threads and for mentions from people you do not follow
        #[arg(long, value_name = "URL")]
        crawler: Option<String>,
    },

    /// Replicate your archive and the ones you follow with peers, and serve them to whoever asks
    #[command(
        after_help = "Runs until ctrl-c; with --once, returns when caught up.\n\
Peers are found on the BitTorrent DHT, on the local network (mDNS) and at the --peer addresses.\n\
Example: fritter sync --once --peer crawler.example.org:7800"
    )]
    Sync {
        #[command(flatten)]
        net: NetArgs,
        /// Return when every archive holds everything its peers announced
        #[arg(long)]
        once: bool,
        /// With --once, give up after this many seconds
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        timeout: u64,
    },

    /// Show the peers of the running `fritter sync` or `fritter serve`, and how far each archive is
    Peers,

    /// Print your feed: your statuses and those of the archives you follow, newest first
    Feed {
        /// How many statuses (1 to 100)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// Where to continue: the cursor printed after the previous page
        #[arg(long)]
        cursor: Option<String>,
    },

    /// Keep your archive online on a hosting service while your machine sleeps
    #[command(after_help = "Example: fritter host signup https://host.example.org\n\
         fritter host add hyper://<key>/ --name blog")]
    Host {
        #[command(subcommand)]
        command: HostCommand,
    },
}

/// `fritter host` subcommands.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Sign up with a hosting service: it proves you own your archive with a file you write
    #[command(
        after_help = "The service must reach your archive: keep `fritter serve --peer <its replication address>` running."
    )]
    Signup {
        /// The service's address, https://HOST[:PORT] (http:// for a local one)
        service: String,
        /// Give up waiting for the service's confirmation after this many seconds
        #[arg(long, default_value_t = 120, value_name = "SECS")]
        timeout: u64,
    },
    /// Ask your hosting services to also keep an archive online
    Add {
        /// The archive: hyper://<key>/ or the bare 64-hex key
        url: String,
        /// The request's name, 1 to 64 of a-z 0-9 _ - [default: the key's first 12 hex digits]
        #[arg(long)]
        name: Option<String>,
    },
    /// Stop hosting an archive: deletes /hosting/<name>.json
    Rm {
        /// The request's name, as `fritter host ls` shows it
        name: String,
    },
    /// List your hosting requests and what each service says of them
    Ls {
        /// Ask this service instead of the ones you signed up with
        #[arg(long, value_name = "URL")]
        service: Option<String>,
    },
}

/// How the node reaches peers; shared by `fritter sync` and `fritter serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetArgs {
    /// Address to accept peers on (any free port on every interface when absent)
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// A peer to replicate with, kept connected; repeat for more
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Do not use the BitTorrent DHT
    #[arg(long)]
    pub no_dht: bool,
    /// DHT bootstrap node instead of the public ones; repeat for more
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dht")]
    pub bootstrap: Vec<String>,
    /// Do not look for peers on the local network (mDNS)
    #[arg(long)]
    pub no_mdns: bool,
}

impl NetArgs {
    pub fn flags(&self) -> crate::sync::NetFlags {
        crate::sync::NetFlags {
            listen: self.listen,
            peers: self.peers.clone(),
            no_dht: self.no_dht,
            no_mdns: self.no_mdns,
            bootstrap: self.bootstrap.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_flag_has_help() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no help", sub.get_name());
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some(),
                    "{} {} has no help",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli =
            Cli::try_parse_from(["fritter", "post", "--json", "hi", "--data-dir", "/d"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.data_dir, Some(PathBuf::from("/d")));
        assert!(matches!(cli.command, Command::Post { text } if text == "hi"));
    }

    #[test]
    fn unknown_flags_are_errors_and_text_after_double_dash_is_text() {
        let err = Cli::try_parse_from(["fritter", "post", "--txt"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let cli = Cli::try_parse_from(["fritter", "post", "--json", "--", "--txt"]).unwrap();
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Post { text } if text == "--txt"));
        let cli =
            Cli::try_parse_from(["fritter", "reply", "/statuses/x.json", "--", "-1"]).unwrap();
        assert!(matches!(cli.command, Command::Reply { text, .. } if text == "-1"));
    }
}
