package slotmap

import "bytes"

// NumSlots is the number of hash slots of a Redis Cluster.
const NumSlots = 16384

// crcTable is the CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0,
// no reflection) lookup table that Redis Cluster uses for key slots.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// crcTable2 advances the CRC over a byte and then a zero byte:
// crcTable2[v] = crcTable[v]<<8 ^ crcTable[crcTable[v]>>8]. As the CRC is
// linear, two bytes b0 b1 then take crcTable2[crc>>8^b0] ^
// crcTable[crc&0xff^b1]: two independent lookups instead of a chain of two.
var crcTable2 = func() (t [256]uint16) {
	for i := range t {
		t[i] = crcTable[i]<<8 ^ crcTable[crcTable[i]>>8]
	}
	return t
}()

// CRC16 returns the CRC16-CCITT (XMODEM) checksum of b.
func CRC16(b []byte) uint16 {
	var crc uint16
	for ; len(b) >= 2; b = b[2:] {
		crc = crcTable2[byte(crc>>8)^b[0]] ^ crcTable[byte(crc)^b[1]]
	}
	if len(b) == 1 {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^b[0]]
	}
	return crc
}

// Slot returns the hash slot of key. When the key holds a hash tag, only the
// tag is hashed: the bytes between the first '{' and the first '}' after it,
// provided there is at least one byte between them. Otherwise (no '{', no
// '}' after it, or "{}") the whole key is hashed, as the cluster spec says.
func Slot(key []byte) uint16 {
	if i := bytes.IndexByte(key, '{'); i >= 0 {
		if j := bytes.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return CRC16(key) & (NumSlots - 1)
}
