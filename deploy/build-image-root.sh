#!/usr/bin/env bash
# Builds gptneo-server and lays out the files of the runtime image under DEST, exactly as
# deploy/Dockerfile copies them:
#   DEST/opt/gptneo-server/gptneo-server     the binary (its RUNPATH includes $ORIGIN)
#   DEST/opt/gptneo-server/lib*.so           the Swift runtime libraries it links, from the toolchain
#   DEST/opt/gptneo-server/runtime-packages  the Debian packages owning every other library it links
# The Dockerfile's build stage runs this script; deploy/check.sh runs it too (with --configuration
# debug, reusing the test build) and checks the Dockerfile installs exactly runtime-packages, so the
# path the tests take is the image's path.
#
# usage: deploy/build-image-root.sh [--configuration release|debug] DEST
set -euo pipefail
cd "$(dirname "$0")/.."

configuration=release
if [ "${1:-}" = "--configuration" ]; then configuration=$2; shift 2; fi
[ $# -eq 1 ] || { echo "usage: $0 [--configuration release|debug] DEST" >&2; exit 2; }
dest=$1

# The README's build command.
swift build -c "$configuration" --product gptneo-server
binary="$(swift build -c "$configuration" --show-bin-path)/gptneo-server"

root="$dest/opt/gptneo-server"
rm -rf "$root"
mkdir -p "$root"
cp "$binary" "$root/gptneo-server"

# Debian packages that are in debian:bookworm-slim already; the Dockerfile does not install them.
in_base_image=" libc6 libgcc-s1 libstdc++6 "

owning_package() {
    # With merged /usr, dpkg knows a library by the path its package shipped (/lib/... or /usr/lib/...).
    local library=$1 real
    real=$(readlink -f "$library")
    for candidate in "$library" "$real" "${real#/usr}" "/usr$library"; do
        if owner=$(dpkg -S "$candidate" 2>/dev/null); then echo "${owner%%:*}"; return 0; fi
    done
    echo "no Debian package owns $library ($real)" >&2
    return 1
}

packages=()
while read -r name path; do
    case "$path" in
        not) echo "gptneo-server links $name, which is not found" >&2; exit 1 ;;
    esac
    if [ -e "$path" ] && package=$(owning_package "$path" 2>/dev/null); then
        case "$in_base_image" in *" $package "*) ;; *) packages+=("$package") ;; esac
    else
        # Not from a Debian package: the Swift runtime of the toolchain that built the binary.
        cp "$path" "$root/"
    fi
done < <(ldd "$binary" | awk '$2 == "=>" && $3 != "" { print $1, $3 }')

printf '%s\n' "${packages[@]}" | sort -u > "$root/runtime-packages"
echo "staged $(ls "$root" | wc -l) files in $root; runtime packages: $(tr '\n' ' ' < "$root/runtime-packages")"
