package slotmap

import (
	"bytes"
	"testing"
)

func TestCRC16Vectors(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
	}{
		{"123456789", 0x31C3}, // the check value from the cluster spec
		{"", 0},
	}
	for _, tt := range tests {
		if got := CRC16([]byte(tt.in)); got != tt.want {
			t.Errorf("CRC16(%q) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

// Two bytes at a time and the odd byte at the end agree with the bitwise
// definition at every length.
func TestCRC16Lengths(t *testing.T) {
	b := make([]byte, 70)
	for i := range b {
		b[i] = byte(i*151 + 7)
	}
	for n := range len(b) + 1 {
		if got, want := CRC16(b[:n]), bitwiseCRC16(b[:n]); got != want {
			t.Errorf("CRC16 of %d bytes = %#04x, bitwise %#04x", n, got, want)
		}
	}
}

func TestSlot(t *testing.T) {
	tests := []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"bar", 5061},
		{"hello", 866},
		{"user:1", 10778},
		{"{user1000}.following", Slot([]byte("user1000"))},
		{"{user1000}.followers", Slot([]byte("user1000"))},
		{"foo{}{bar}", CRC16([]byte("foo{}{bar}")) & (NumSlots - 1)},
		{"foo{{bar}}zap", CRC16([]byte("{bar")) & (NumSlots - 1)},
		{"foo{bar}{zap}", Slot([]byte("bar"))},
		{"{}", CRC16([]byte("{}")) & (NumSlots - 1)},
		{"{", CRC16([]byte("{")) & (NumSlots - 1)},
		{"}{", CRC16([]byte("}{")) & (NumSlots - 1)},
		{"a{b", CRC16([]byte("a{b")) & (NumSlots - 1)},
		{"", 0},
	}
	for _, tt := range tests {
		if got := Slot([]byte(tt.key)); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

// slowSlot is the cluster spec's reference algorithm written plainly, used
// as the oracle for the fuzz test.
func slowSlot(key []byte) uint16 {
	s := bytes.IndexByte(key, '{')
	if s >= 0 {
		e := bytes.IndexByte(key[s+1:], '}')
		if e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return bitwiseCRC16(key) & (NumSlots - 1)
}

// bitwiseCRC16 is CRC16-CCITT (XMODEM) one bit at a time.
func bitwiseCRC16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func FuzzSlot(f *testing.F) {
	for _, s := range []string{"foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{", "}", "{}x", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		if got, want := Slot(key), slowSlot(key); got != want {
			t.Fatalf("Slot(%q) = %d, reference says %d", key, got, want)
		}
	})
}

func BenchmarkSlot(b *testing.B) {
	key := []byte("user:1000:profile")
	b.ReportAllocs()
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		Slot(key)
	}
}
