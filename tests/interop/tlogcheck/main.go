// Command tlogcheck verifies a lapor-node ledger served as C2SP tlog-tiles with Go's own
// transparency-log packages (golang.org/x/mod/sumdb/note and sumdb/tlog), as an
// independent client would. The only glue is the mapping from Go's tile coordinates to
// the C2SP paths (Go writes tile/8/L/N and tile/8/data/N; C2SP drops the height and names
// the data tiles "entries") and the reading of the checkpoint body; signatures, hashing,
// tile authentication and proofs are Go's.
//
// Usage: tlogcheck URL VKEY [OLD_SIZE OLD_ROOT_BASE64]
//
// Steps: 1. note.Open the checkpoint with the vkey; 2. read the tree through
// tlog.TileHashReader (which authenticates every tile against the checkpoint's root) and
// check tlog.TreeHash; 3. for every entry bundle, check each entry's record hash is the
// stored leaf and tlog.CheckRecord its inclusion; 4. with OLD_SIZE, tlog.CheckTree the
// older tree's consistency. Prints one OK line, or the first mismatch and exits 1.
package main

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL "+format+"\n", args...)
	os.Exit(1)
}

func fetch(url string) []byte {
	request, err := http.NewRequest("GET", url, nil)
	if err != nil {
		fail("%v", err)
	}
	// Ask for gzip ourselves, so the bundles' Content-Encoding is exercised and checked.
	request.Header.Set("Accept-Encoding", "gzip, identity")
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer response.Body.Close()
	var body io.Reader = response.Body
	if response.Header.Get("Content-Encoding") == "gzip" {
		unzipped, err := gzip.NewReader(response.Body)
		if err != nil {
			fail("GET %s: gzip: %v", url, err)
		}
		body = unzipped
	}
	data, err := io.ReadAll(body)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	if response.StatusCode != http.StatusOK {
		fail("GET %s: status %d: %s", url, response.StatusCode, data)
	}
	return data
}

// c2spPath maps Go's tile coordinate path to the C2SP tlog-tiles path.
func c2spPath(t tlog.Tile) string {
	path := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", height))
	if t.L == -1 {
		path = "entries/" + strings.TrimPrefix(path, "data/")
	}
	return "tile/" + path
}

type tileReader struct {
	base    string
	fetched int
}

func (r *tileReader) Height() int { return height }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		data[i] = fetch(r.base + c2spPath(t))
		r.fetched++
		if len(data[i]) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes, want %d", c2spPath(t), len(data[i]), t.W*tlog.HashSize)
		}
	}
	return data, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func parseHash(text string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != tlog.HashSize {
		fail("bad hash %q", text)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func main() {
	if len(os.Args) != 3 && len(os.Args) != 5 {
		fail("usage: tlogcheck URL VKEY [OLD_SIZE OLD_ROOT_BASE64]")
	}
	base := strings.TrimSuffix(os.Args[1], "/") + "/"
	verifier, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fail("vkey: %v", err)
	}

	// 1. The checkpoint: a signed note whose text is origin, size, root.
	opened, err := note.Open(fetch(base+"checkpoint"), note.VerifierList(verifier))
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.Split(opened.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint text %q", opened.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size %q", lines[1])
	}
	tree := tlog.Tree{N: size, Hash: parseHash(lines[2])}

	// 2. Every tile read is authenticated against the checkpoint's root.
	reader := &tileReader{base: base}
	hashes := tlog.TileHashReader(tree, reader)
	root, err := tlog.TreeHash(size, hashes)
	if err != nil {
		fail("TreeHash: %v", err)
	}
	if root != tree.Hash {
		fail("root %v, checkpoint says %v", root, tree.Hash)
	}

	// 3. Every entry: its record hash is the leaf in the tree, and its inclusion proves.
	checked := int64(0)
	for _, t := range tlog.NewTiles(height, 0, size) {
		if t.L != 0 || (t.W != 1<<height && int64(t.N)<<height+int64(t.W) != size) {
			continue // level 0 only, and of the partial tiles only the one of this size
		}
		bundle := fetch(base + c2spPath(tlog.Tile{H: height, L: -1, N: t.N, W: t.W}))
		for i := 0; i < t.W; i++ {
			if len(bundle) < 2 {
				fail("bundle %d: entry %d missing", t.N, i)
			}
			n := int(binary.BigEndian.Uint16(bundle))
			if len(bundle) < 2+n {
				fail("bundle %d: entry %d truncated", t.N, i)
			}
			entry := bundle[2 : 2+n]
			bundle = bundle[2+n:]
			index := t.N<<height + int64(i)
			leaf := tlog.RecordHash(entry)
			stored, err := hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
			if err != nil {
				fail("leaf %d: %v", index, err)
			}
			if stored[0] != leaf {
				fail("entry %d hashes to %v, the tile has %v", index, leaf, stored[0])
			}
			proof, err := tlog.ProveRecord(size, index, hashes)
			if err != nil {
				fail("ProveRecord %d: %v", index, err)
			}
			if err := tlog.CheckRecord(proof, size, tree.Hash, index, leaf); err != nil {
				fail("CheckRecord %d: %v", index, err)
			}
			checked++
		}
		if len(bundle) != 0 {
			fail("bundle %d: %d bytes after its %d entries", t.N, len(bundle), t.W)
		}
	}
	if checked != size {
		fail("checked %d entries, the checkpoint has %d", checked, size)
	}

	// 4. An older tree (a checkpoint the caller kept) is consistent with this one.
	if len(os.Args) == 5 {
		oldSize, err := strconv.ParseInt(os.Args[3], 10, 64)
		if err != nil {
			fail("old size %q", os.Args[3])
		}
		oldRoot := parseHash(os.Args[4])
		proof, err := tlog.ProveTree(size, oldSize, hashes)
		if err != nil {
			fail("ProveTree: %v", err)
		}
		if err := tlog.CheckTree(proof, size, tree.Hash, oldSize, oldRoot); err != nil {
			fail("CheckTree %d -> %d: %v", oldSize, size, err)
		}
	}
	fmt.Printf("OK %s size %d: %d entries included, %d tiles read\n", lines[0], size, checked, reader.fetched)
}
