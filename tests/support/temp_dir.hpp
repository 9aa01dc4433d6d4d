// A fresh directory under the system temp folder (mkdtemp: unique, mode 0700), removed with
// everything in it when the object goes. The one temp-directory helper of every test tier.
// Not thread-safe: one owner; the files in it may be used from any thread.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace cwhook::test {

class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // The path of `name` inside the directory (the file need not exist).
    std::string file(std::string_view name) const { return (path_ / name).string(); }
    // Writes `content` to `name` (created or truncated) and returns its path.
    std::string write(std::string_view name, std::string_view content) const;

private:
    std::filesystem::path path_;
};

} // namespace cwhook::test
