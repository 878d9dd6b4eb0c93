"""weft_dependencies(): the external repositories weft needs, for weft's own WORKSPACE and
for any workspace that uses weft as @weft:

    local_repository(name = "weft", path = "...")
    load("@weft//tools/bazel:deps.bzl", "weft_dependencies")
    weft_dependencies()

Everything is offline (Bazel 4.2.3 from Debian, see shared/BAZEL.md). A repository the
calling WORKSPACE already declared is left alone, so a consumer can bring its own.
"""

# Label() here resolves against the repository holding this file (main repo or @weft), so
# these work from any workspace; a plain string would resolve against the caller's.
_SYSTEM_BUILD = Label("//tools/bazel:system.BUILD")
_THIS_FILE = Label("//tools/bazel:deps.bzl")

def _weft_shim_impl(rctx):
    # A macro cannot know where weft sits on disk, so local_repository(path = ...) cannot
    # name our shims from a consumer's WORKSPACE; a repository rule can, through a label.
    # (The label must be in a package: the shim folders are repositories, not packages.)
    src = rctx.path(rctx.attr.anchor).dirname.get_child(rctx.attr.subdir)
    for entry in src.readdir():
        rctx.symlink(entry, entry.basename)

_weft_shim = repository_rule(
    implementation = _weft_shim_impl,
    attrs = {
        "anchor": attr.label(default = _THIS_FILE, allow_single_file = True),
        "subdir": attr.string(mandatory = True),
    },
    local = True,
)

def _declare(name, rule, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def weft_dependencies():
    # Stand-ins for what Bazel 4.2.3 would otherwise download.
    for name in ["rules_cc", "remote_coverage_tools"]:
        _declare(name, _weft_shim, subdir = name)
    _declare(name = "rules_java", rule = native.local_repository, path = "/usr/share/bazel/rules/java")
    _declare(name = "platforms", rule = native.local_repository, path = "/usr/share/bazel/tools/platforms")

    # Debian's gtest, benchmark, Abseil, mimalloc (installed by tools/setup.sh).
    _declare(
        name = "system",
        rule = native.new_local_repository,
        path = "/usr",
        # 4.2.3 wants a string here; str(Label) keeps the "@weft" part when loaded as @weft.
        build_file = str(_SYSTEM_BUILD),
    )
