//! The ssh wing: everything about reaching an instance over ssh, in one place that
//! `tether ssh`, `apply --wait-for-ssh` and jobs on instances all use.
//!
//! - `hostkeys`: the project's known_hosts file (keys by instance id) and parsing the
//!   fingerprints cloud-init prints to the console and `ssh-keyscan`'s output;
//! - `reach`: waiting for an instance's sshd and verifying its host key (console, record,
//!   or first use when the spec asks), and the ssh options that hold every connection to
//!   the verified key;
//! - `config`: the project's marked alias block in a user's OpenSSH config (pure text);
//! - `connections`: a run's shared connections (`ControlMaster` sockets in a private
//!   directory) to the instances it reached.

pub mod config;
pub mod connections;
pub mod hostkeys;
pub mod reach;
