package attachments

import (
	"encoding/binary"
	"io"
	"strings"
	"unicode/utf16"
)

// oleMagic opens every OLE compound file (Compound File Binary, [MS-CFB]).
const oleMagic = "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

// Special sector numbers of [MS-CFB].
const (
	cfbMaxRegSect = 0xfffffffa
	cfbEndOfChain = 0xfffffffe
	cfbNoStream   = 0xffffffff
)

// Limits that keep a hostile compound file from making detection loop or
// allocate without bound.
const (
	cfbMaxDirEntries = 1 << 16
	cfbMaxDIFAT      = 1 << 16
)

// oleKind tells DOC, XLS and PPT apart by the streams in the root storage of
// the compound file: "WordDocument", "Workbook" (or the older "Book") and
// "PowerPoint Document". Other compound files (MSI installers, Outlook
// messages, files that do not parse) are refused, whatever their name.
func oleKind(r io.ReaderAt, size int64) (*Kind, error) {
	names, ok := cfbRootNames(r, size)
	if !ok {
		return nil, ErrNotAllowed
	}
	for _, want := range []struct {
		stream string
		kind   *Kind
	}{
		{"WordDocument", KindDOC},
		{"Workbook", KindXLS},
		{"Book", KindXLS},
		{"PowerPoint Document", KindPPT},
	} {
		for _, n := range names {
			if strings.EqualFold(n, want.stream) {
				return want.kind, nil
			}
		}
	}
	return nil, ErrNotAllowed
}

// cfb reads a compound file's sectors and allocation table.
type cfb struct {
	r          io.ReaderAt
	size       int64
	sectorSize int64
	fat        []uint32 // the FAT's sectors (from the DIFAT)
}

func (c *cfb) offset(sector uint32) int64 { return (int64(sector) + 1) * c.sectorSize }

func (c *cfb) u32(off int64) (uint32, bool) {
	var b [4]byte
	if off < 0 || off+4 > c.size {
		return 0, false
	}
	if _, err := c.r.ReadAt(b[:], off); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[:]), true
}

// next follows the FAT from sector s.
func (c *cfb) next(s uint32) (uint32, bool) {
	per := uint32(c.sectorSize / 4)
	i := s / per
	if int(i) >= len(c.fat) {
		return 0, false
	}
	return c.u32(c.offset(c.fat[i]) + int64(s%per)*4)
}

// cfbRootNames returns the names of the entries directly in the root
// storage, walking the header, the DIFAT, the directory's sector chain and
// the root's red-black tree of children, all bounded.
func cfbRootNames(r io.ReaderAt, size int64) ([]string, bool) {
	hdr := make([]byte, 512)
	if size < 512 {
		return nil, false
	}
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, false
	}
	if binary.LittleEndian.Uint16(hdr[0x1c:]) != 0xfffe {
		return nil, false
	}
	shift := binary.LittleEndian.Uint16(hdr[0x1e:])
	if shift != 9 && shift != 12 {
		return nil, false
	}
	c := &cfb{r: r, size: size, sectorSize: 1 << shift}
	nFAT := binary.LittleEndian.Uint32(hdr[0x2c:])
	dirStart := binary.LittleEndian.Uint32(hdr[0x30:])
	difatNext := binary.LittleEndian.Uint32(hdr[0x44:])
	maxSectors := uint32(size / c.sectorSize)
	if nFAT == 0 || nFAT > maxSectors {
		return nil, false
	}
	for i := 0; i < 109 && uint32(len(c.fat)) < nFAT; i++ {
		c.fat = append(c.fat, binary.LittleEndian.Uint32(hdr[0x4c+4*i:]))
	}
	per := c.sectorSize/4 - 1
	for seen := 0; uint32(len(c.fat)) < nFAT && difatNext <= cfbMaxRegSect; seen++ {
		if seen > cfbMaxDIFAT {
			return nil, false
		}
		base := c.offset(difatNext)
		for j := int64(0); j < per && uint32(len(c.fat)) < nFAT; j++ {
			v, ok := c.u32(base + 4*j)
			if !ok {
				return nil, false
			}
			c.fat = append(c.fat, v)
		}
		var ok bool
		if difatNext, ok = c.u32(base + 4*per); !ok {
			return nil, false
		}
	}
	for _, s := range c.fat {
		if s > cfbMaxRegSect || c.offset(s)+c.sectorSize > size {
			return nil, false
		}
	}

	// The directory: 128-byte entries in a chain of sectors.
	type entry struct {
		name               string
		typ                byte
		left, right, child uint32
	}
	var dir []entry
	visited := map[uint32]bool{}
	raw := make([]byte, c.sectorSize)
	for s := dirStart; s != cfbEndOfChain; {
		if s > cfbMaxRegSect || visited[s] || len(dir) >= cfbMaxDirEntries {
			return nil, false
		}
		visited[s] = true
		if off := c.offset(s); off+c.sectorSize > size {
			return nil, false
		} else if _, err := r.ReadAt(raw, off); err != nil {
			return nil, false
		}
		for e := int64(0); e+128 <= c.sectorSize; e += 128 {
			b := raw[e : e+128]
			n := int(binary.LittleEndian.Uint16(b[64:]))
			if n > 64 || n%2 != 0 {
				n = 0
			}
			units := make([]uint16, 0, 32)
			for i := 0; i+2 <= n; i += 2 {
				u := binary.LittleEndian.Uint16(b[i:])
				if u == 0 {
					break
				}
				units = append(units, u)
			}
			dir = append(dir, entry{
				name: string(utf16.Decode(units)), typ: b[66],
				left: binary.LittleEndian.Uint32(b[68:]), right: binary.LittleEndian.Uint32(b[72:]),
				child: binary.LittleEndian.Uint32(b[76:]),
			})
		}
		var ok bool
		if s, ok = c.next(s); !ok {
			return nil, false
		}
	}
	if len(dir) == 0 || dir[0].typ != 5 { // 5: the root storage
		return nil, false
	}
	var names []string
	stack := []uint32{dir[0].child}
	seen := map[uint32]bool{}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i == cfbNoStream {
			continue
		}
		if int64(i) >= int64(len(dir)) || seen[i] {
			return nil, false
		}
		seen[i] = true
		e := dir[i]
		if e.typ == 1 || e.typ == 2 { // storage or stream
			names = append(names, e.name)
		}
		stack = append(stack, e.left, e.right)
	}
	return names, true
}
