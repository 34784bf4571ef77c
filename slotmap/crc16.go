package slotmap

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

// CRC16 returns the CRC16-CCITT (XMODEM) checksum of b.
func CRC16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^c]
	}
	return crc
}

// Slot returns the hash slot of key. When the key holds a hash tag, only the
// tag is hashed: the bytes between the first '{' and the first '}' after it,
// provided there is at least one byte between them. Otherwise (no '{', no
// '}' after it, or "{}") the whole key is hashed, as the cluster spec says.
func Slot(key []byte) uint16 {
	for i, c := range key {
		if c != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j > i+1 {
					key = key[i+1 : j]
				}
				return CRC16(key) & (NumSlots - 1)
			}
		}
		break
	}
	return CRC16(key) & (NumSlots - 1)
}
