// Package hub names models the way the Hugging Face Hub does and keeps them in the Hub's
// own local cache, shared with the Python tools (huggingface_hub, transformers, vLLM,
// huggingface-cli) and llama.cpp:
//
//	<cache>/models--<org>--<name>/blobs/<etag>            file contents (sha256 for LFS files, git sha1 otherwise)
//	<cache>/models--<org>--<name>/snapshots/<commit>/<file> relative symlinks to ../../blobs/<etag>
//	<cache>/models--<org>--<name>/refs/<revision>           the commit a branch or tag pointed at
//	<cache>/.locks/models--<org>--<name>/<etag>.lock        held while a blob downloads
//
// The cache is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
//
// A model argument is a local path, or a repo id with optional parts:
//
//	org/name                 safetensors weights (config, tokenizer, shards) or the repo's one GGUF
//	org/name@revision        a branch, tag or commit
//	org/name:Q8_0            the GGUF file of that quantization (as llama.cpp's -hf)
//	org/name/path/file.gguf  one file of the repo (also a llama2.c .bin, with its tokenizer)
//
// Resolve tries a local path, then the cache (no request at all), then a download.
// Downloads speak the Hub's HTTP API as huggingface_hub does: the file list from
// GET /api/models/{repo}/revision/{rev}?blobs=true, each file's metadata from a HEAD on
// /{repo}/resolve/{commit}/{file} (X-Repo-Commit, X-Linked-Etag or ETag, X-Linked-Size,
// a redirect to the CDN for LFS files), bytes from a GET that resumes with Range into
// blobs/<etag>.incomplete, a sha256 (LFS) or git-sha1 check, and an atomic rename.
// HF_ENDPOINT moves the Hub (mirrors, tests); HF_TOKEN or the token file authenticates;
// HF_HUB_OFFLINE=1 never touches the network.
package hub
