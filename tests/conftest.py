"""Every test imports product code as `adlightning.<folder>.<module>`: importing `tools` loads the repository as that
package (tools/__init__.py), the way ComfyUI loads it as a package named after its folder."""
import tools  # noqa: F401
