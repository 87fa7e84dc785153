//! Who `baton run --user NAME` runs as: the user's ids, groups, home and shell, read from
//! the new root's /etc/passwd and /etc/group as the C library's getpwnam and getgrouplist
//! would. Pure, over the files' bytes: the files come from the shared directory, which is
//! the host's, so every loop is bounded and a malformed line is skipped, never trusted.

use crate::init::spawn::Identity;

/// A bound on the lines read from either file.
const MAX_LINES: usize = 65_536;
/// A bound on the supplementary groups (the kernel's NGROUPS_MAX).
const MAX_GROUPS: usize = 65_536;

/// A user as /etc/passwd describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// The entry for `name` in /etc/passwd's text.
pub fn find_user(passwd: &str, name: &str) -> Option<User> {
    passwd.lines().take(MAX_LINES).find_map(|line| {
        let mut fields = line.split(':');
        let (user, _password, uid, gid, _gecos, home, shell) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next().unwrap_or(""),
        );
        (user == name).then_some(())?;
        Some(User {
            name: user.to_owned(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            home: home.to_owned(),
            shell: shell.to_owned(),
        })
    })
}

/// `user`'s ids: their primary group and every group of /etc/group's text that lists them.
pub fn identity(user: &User, group: &str) -> Identity {
    let mut groups = vec![user.gid];
    for line in group.lines().take(MAX_LINES) {
        let mut fields = line.split(':');
        let (Some(_name), Some(_password), Some(gid), Some(members)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(gid) = gid.parse::<u32>() else {
            continue;
        };
        if groups.len() < MAX_GROUPS
            && !groups.contains(&gid)
            && members.split(',').any(|m| m == user.name)
        {
            groups.push(gid);
        }
    }
    Identity {
        uid: user.uid,
        gid: user.gid,
        groups,
    }
}

/// The environment's entries that name the user, replacing those of `env`.
pub fn environment(env: &[std::ffi::OsString], user: &User) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    let named = [b"HOME=".as_slice(), b"USER=", b"LOGNAME=", b"SHELL="];
    let mut out: Vec<std::ffi::OsString> = env
        .iter()
        .filter(|e| !named.iter().any(|n| e.as_bytes().starts_with(n)))
        .cloned()
        .collect();
    let shell = if user.shell.is_empty() {
        "/bin/sh"
    } else {
        &user.shell
    };
    out.push(format!("HOME={}", user.home).into());
    out.push(format!("USER={}", user.name).into());
    out.push(format!("LOGNAME={}", user.name).into());
    out.push(format!("SHELL={shell}").into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        broken line\n\
        me:x:1000:1000:Me,,,:/home/me:/bin/zsh\n\
        odd:x:notanumber:1:::\n\
        nosh:x:1001:1001::/home/nosh\n";
    const GROUP: &str = "root:x:0:\nsudo:x:27:me,other\nkvm:x:104:other,me\n\
        users:x:100:someone\nbad\nme:x:1000:\n";

    #[test]
    fn users_are_found_by_name() {
        let me = find_user(PASSWD, "me").unwrap();
        assert_eq!((me.uid, me.gid), (1000, 1000));
        assert_eq!(
            (me.home.as_str(), me.shell.as_str()),
            ("/home/me", "/bin/zsh")
        );
        assert_eq!(find_user(PASSWD, "nobody"), None);
        assert_eq!(find_user(PASSWD, "odd"), None, "a uid that is no number");
        assert_eq!(find_user(PASSWD, "nosh").unwrap().shell, "");
        assert_eq!(find_user(PASSWD, "m"), None, "names match whole");
    }

    #[test]
    fn groups_are_the_primary_one_and_those_listing_the_user() {
        let me = find_user(PASSWD, "me").unwrap();
        let id = identity(&me, GROUP);
        assert_eq!(id.groups, [1000, 27, 104]);
        assert_eq!((id.uid, id.gid), (1000, 1000));
    }

    #[test]
    fn the_environment_names_the_user() {
        let me = find_user(PASSWD, "nosh").unwrap();
        let env = environment(&["HOME=/".into(), "PATH=/bin".into()], &me);
        let env: Vec<_> = env.iter().map(|e| e.to_str().unwrap()).collect();
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "HOME=/home/nosh",
                "USER=nosh",
                "LOGNAME=nosh",
                "SHELL=/bin/sh"
            ]
        );
    }
}
