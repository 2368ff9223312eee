// LAME's configuration for ivrd, shared by the in-process encoder (mp3enc.go) and the
// encoding threads (mp3async.go).
#include <lame/lame.h>

// ivrd_lame_new configures a LAME encoder for Rate-in, Rate-out CBR, mono (channels 1) or
// stereo (2: left and right coded independently, never as mid/side, so that neither channel
// takes on the other's sound). reservoir 0 turns LAME's bit reservoir off: every frame then
// carries its own bits only, so frames made by different encoders can follow each other
// (see mp3async.go). It returns NULL when LAME refuses the parameters; *outRate receives the
// sample rate LAME settled on.
static lame_global_flags *ivrd_lame_new(int rate, int kbps, int channels, int reservoir, int *outRate) {
	lame_global_flags *gf = lame_init();
	if (gf == NULL) {
		return NULL;
	}
	lame_set_in_samplerate(gf, rate);
	lame_set_out_samplerate(gf, rate);
	lame_set_num_channels(gf, channels);
	lame_set_mode(gf, channels == 2 ? STEREO : MONO);
	lame_set_VBR(gf, vbr_off);
	lame_set_brate(gf, kbps);
	// Quality 7 leaves out LAME's noise shaping: on 8 kHz speech it encodes in about 55 %
	// of quality 5's CPU (BenchmarkRecording: 0.074 -> 0.040 % of a core per call; encoding
	// is the largest cost of a monitored call) at the same SNR (speech: 23.6 dB vs 22.9).
	// See BENCHMARKS.md.
	lame_set_quality(gf, 7);
	// Long blocks only: at 8 kHz and 32 kbit/s LAME's short blocks (for sharp attacks) cost
	// their bits more than they save on speech. Without them 600 s of espeak-ng speech
	// decodes at 24.5 dB SNR instead of 21.3 and encodes about 15 % faster.
	lame_set_no_short_blocks(gf, 1);
	lame_set_bWriteVbrTag(gf, 0);
	if (!reservoir) {
		lame_set_disable_reservoir(gf, 1);
	}
	if (lame_init_params(gf) < 0) {
		lame_close(gf);
		return NULL;
	}
	*outRate = lame_get_out_samplerate(gf);
	return gf;
}
