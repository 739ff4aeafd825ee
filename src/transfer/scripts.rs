//! The POSIX shell that file steps run on a target (or on this machine, for local tasks):
//! one script to see what is there, one to put files in place, one to send files back.
//! Each is one process tree per step and host, whatever the number of files: `stat`,
//! `sha256sum` and `mv` take many files per process (through `xargs` and `find -exec
//! +`). They need sh, tar, stat, sha256sum, find, xargs, awk, mktemp and mv: GNU
//! coreutils or BusyBox. Must not: print anything but what the parser here reads.

/// `$1`: the base directory. stdin: lines `SIZE<TAB>PATH` of candidates (PATH relative
/// to the base; SIZE -1: hash whatever size it has). stdout: `S<TAB>TYPE<TAB>SIZE<TAB>MODE<TAB>PATH`
/// for each candidate that exists, `H<TAB>SHA256  PATH` for each regular file whose size
/// is the one asked (sha256sum's own format), `L<TAB>TARGET<TAB>PATH` for symlinks. A
/// base that does not exist prints nothing.
pub const PROBE: &str = r#"cd -- "$1" 2>/dev/null || exit 0
t=$(mktemp -d 2>/dev/null) || { echo "nexus: cannot make a temporary directory" >&2; exit 1; }
trap 'rm -rf -- "$t"' 0
cat > "$t/w"
cut -f2- < "$t/w" | tr '\n' '\0' | xargs -0 -r stat -c '%F	%s	%a	%n' -- > "$t/s" 2>/dev/null
awk -F'\t' 'NR==FNR { p=substr($0, index($0, "\t")+1); w[p]=$1; next }
  { p=$0; for (i=0;i<3;i++) p=substr(p, index(p, "\t")+1)
    if ($1 ~ /^regular/ && (p in w) && (w[p]==$2 || w[p]==-1)) print p }' "$t/w" "$t/s" | tr '\n' '\0' | xargs -0 -r sha256sum -- > "$t/h" 2>/dev/null
awk -F'\t' '{ p=$0; for (i=0;i<3;i++) p=substr(p, index(p, "\t")+1); if ($1=="symbolic link") print p }' "$t/s" | while IFS= read -r p; do printf 'L\t%s\t%s\n' "$(readlink -- "$p")" "$p"; done
sed 's/^/S	/' "$t/s"
sed 's/^/H	/' "$t/h"
"#;

/// `$1`: the base directory (created if missing); `$2`: a validator command (`$NEXUS_FILE`
/// is the new file `$5`) or empty; `$3`/`$4`: owner and group or empty. stdin: a tar
/// stream of the files to write, paths relative to the base, led by `.nexus-manifest`:
/// a line per directory holding them (parents first), `DIR<TAB>NAME<TAB>NAME...`. The
/// files are unpacked into a private directory inside the base (the same filesystem),
/// validated, given their owner, then renamed over their targets: one `mv` per directory,
/// or one rename of a whole directory that is not there yet. A reader sees the old file
/// or the new one, never a part. Whatever fails leaves the targets as they were.
pub const APPLY: &str = r#"set -e
mkdir -p -- "$1"
cd -- "$1"
s=$(mktemp -d ./.nexus-stage.XXXXXX)
trap 'rm -rf -- "$s"' 0
tar -x -p -o -f - -C "$s"
if [ -n "$2" ]; then
  NEXUS_FILE="$s/$5" sh -c "$2" >&2 || { echo "nexus: the validator exited with $?: the old file is kept" >&2; exit 65; }
fi
if [ -n "$3$4" ]; then chown -R -h -- "$3${4:+:$4}" "$s"; fi
tab=$(printf '	')
set -f
while IFS= read -r line; do
  IFS=$tab; set -- $line; IFS=' 	
'
  d=$1; shift
  [ -d "$s/$d" ] || continue
  if [ "$d" != . ] && [ ! -e "$d" ] && [ ! -L "$d" ]; then
    p=${d%/*}; [ "$p" = "$d" ] || [ -d "$p" ] || mkdir -p -- "$p"
    mv -f -- "$s/$d" "$d"; continue
  fi
  [ -d "$d" ] || mkdir -p -- "$d"
  for f; do set -- "$@" "$s/$d/$f"; shift; done
  mv -f -- "$@" "$d/"
done < "$s/.nexus-manifest"
"#;

/// `$1`: the base directory; `$2`: a large file's path under it; `$3`: its SHA-256;
/// `$4`: how many bytes of it are already in its partial file (0: start afresh); `$5`:
/// its mode; `$6`/`$7`: owner and group or empty; `$8`: its size. stdin: the rest of the
/// file. The bytes are appended to `.nexus-part-SHA256` beside the target, which is
/// renamed over it once it has all its bytes: an interrupted transfer leaves the old file
/// and a partial one the next run continues. (What was there before is checked by hash,
/// by the probe; what arrives through the channel is protected by SSH's MAC.)
pub const PART: &str = r#"set -e
mkdir -p -- "$1"
cd -- "$1"
d=$(dirname -- "$2")
mkdir -p -- "$d"
p="$d/.nexus-part-$3"
if [ "$4" = 0 ]; then : > "$p"; elif [ "$(wc -c < "$p")" -ne "$4" ]; then
  rm -f -- "$p"; echo "nexus: the partial file of $2 changed: it starts again" >&2; exit 1; fi
cat >> "$p"
n=$(wc -c < "$p")
if [ "$n" -ne "$8" ]; then
  echo "nexus: $2 is incomplete ($n of $8 bytes arrived): the next run continues it" >&2; exit 66; fi
chmod "$5" "$p"
if [ -n "$6$7" ]; then chown -h -- "$6${7:+:$7}" "$p"; fi
mv -f -- "$p" "$2"
"#;

/// The name of a large file's partial upload beside it.
pub fn partial_name(rel: &str, sha256: &str) -> String {
    match rel.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/.nexus-part-{sha256}"),
        None => format!("./.nexus-part-{sha256}"),
    }
}

/// `$1`: a file or directory on the target. stdout: a tar stream of it (a directory's
/// contents, or the one file).
pub const FETCH: &str = r#"if [ -d "$1" ]; then cd -- "$1" && exec tar -c -f - .
else cd -- "$(dirname -- "$1")" && exec tar -c -f - -- "$(basename -- "$1")"; fi
"#;

/// What the probe found of one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// `regular file`, `regular empty file`, `directory`, `symbolic link`, ...
    pub kind: String,
    pub size: u64,
    pub mode: u32,
    pub sha256: Option<String>,
    pub link: Option<String>,
}

impl Found {
    pub fn is_file(&self) -> bool {
        self.kind.starts_with("regular")
    }

    pub fn is_link(&self) -> bool {
        self.kind == "symbolic link"
    }
}

/// Read the probe's output.
pub fn parse_probe(out: &[u8]) -> std::collections::HashMap<String, Found> {
    let mut found: std::collections::HashMap<String, Found> = Default::default();
    for line in String::from_utf8_lossy(out).lines() {
        if let Some(rest) = line.strip_prefix("S\t") {
            let mut parts = rest.splitn(4, '\t');
            let (Some(kind), Some(size), Some(mode), Some(path)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let f = found.entry(path.to_string()).or_default();
            f.kind = kind.to_string();
            f.size = size.parse().unwrap_or(0);
            f.mode = u32::from_str_radix(mode, 8).unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("H\t") {
            // sha256sum escapes a name with a backslash or newline: `\HASH  a\\b`.
            let (escaped, rest) = match rest.strip_prefix('\\') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let Some((hash, path)) = rest.split_once("  ") else {
                continue;
            };
            let path = if escaped {
                path.replace("\\n", "\n").replace("\\\\", "\\")
            } else {
                path.to_string()
            };
            found.entry(path).or_default().sha256 = Some(hash.to_string());
        } else if let Some(rest) = line.strip_prefix("L\t") {
            if let Some((target, path)) = rest.split_once('\t') {
                found.entry(path.to_string()).or_default().link = Some(target.to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_is_read() {
        let out = b"L\t../x\tlink\nS\tregular file\t5\t644\ta/b c\nS\tsymbolic link\t4\t777\tlink\nH\tabc123  a/b c\nH\t\\def  back\\\\slash\n";
        let f = parse_probe(out);
        assert_eq!(
            f["a/b c"],
            Found {
                kind: "regular file".into(),
                size: 5,
                mode: 0o644,
                sha256: Some("abc123".into()),
                link: None
            }
        );
        assert!(f["link"].is_link());
        assert_eq!(f["link"].link.as_deref(), Some("../x"));
        assert_eq!(f["back\\slash"].sha256.as_deref(), Some("def"));
    }
}
