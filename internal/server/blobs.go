package server

import (
	"log/slog"
	"path/filepath"

	"github.com/ivrd/ivrd/internal/blob"
	"github.com/ivrd/ivrd/internal/config"
	"github.com/ivrd/ivrd/internal/recording"
)

// recordingStore is where recordings are kept (--blob) and the URLs apps get for them
// (--recording-urls).
type recordingStore struct {
	blobs  blob.Store
	pieces recording.Pieces // running recordings' pieces; nil on local disk
	urls   recording.Signer // monitor_url, record_url
	own    blob.Signer      // ivrd's signed URLs, served at blob.PathPrefix
	close  func()
}

func openRecordingStore(cfg config.Config, secret []byte, log *slog.Logger) (*recordingStore, error) {
	own := blob.Signer{Secret: secret, BaseURL: cfg.PublicURL, TTL: cfg.URLTTL}
	if cfg.Blob.IsZero() {
		return &recordingStore{blobs: localBlobs(cfg.Data), urls: own, own: own, close: func() {}}, nil
	}
	access, secretKey, token := config.S3Credentials()
	s3, err := blob.NewS3(blob.S3Config{Endpoint: cfg.Blob.Endpoint, Region: cfg.Blob.Region, Bucket: cfg.Blob.Bucket,
		AccessKey: access, SecretKey: secretKey, SessionToken: token, Log: log})
	if err != nil {
		return nil, err
	}
	rs := &recordingStore{blobs: s3, pieces: s3, urls: own, own: own, close: func() { s3.Close() }}
	if cfg.RecordingURLs == config.RecordingURLsPresigned {
		p, err := s3.Presigner(cfg.URLTTL)
		if err != nil {
			s3.Close()
			return nil, err
		}
		rs.urls = p
	}
	log.Info("recordings in S3", "bucket", cfg.Blob.Bucket, "endpoint", cfg.Blob.Endpoint, "urls", cfg.RecordingURLs)
	return rs, nil
}

// localBlobs is the blob store of the recordings in data directory data.
func localBlobs(data string) *blob.Local { return &blob.Local{Dir: filepath.Join(data, "recordings")} }
