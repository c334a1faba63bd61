/* Attachments: which files may be uploaded, how their bytes are checked and thumbnailed, where they are kept and who
 * may read them. */
#ifndef PLAZA_CHAT_UPLOAD_H
#define PLAZA_CHAT_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "plaza/error.h"
#include "plaza/store.h"
#include "plaza/str.h"

#define PZ_UPLOAD_MAX_BYTES (10 * 1024 * 1024)
#define PZ_UPLOAD_NAME_MAX 255 /* bytes of UTF-8 */
#define PZ_UPLOAD_CAPTION_MAX_CHARS 1024
#define PZ_UPLOAD_THUMB_PX 320 /* a thumbnail fits in this square */
/* Images with more pixels than this are refused (422) rather than decoded:
 * a few kilobytes of PNG can claim gigapixels. */
#define PZ_UPLOAD_MAX_PIXELS (64 * 1024 * 1024)
/* An upload never sent in a message is deleted, with its files, this long
 * after it was uploaded: a week, as long as a device may stay offline
 * with the message that carries it still in its outbox. */
#define PZ_UPLOAD_UNSENT_TTL_MS (7LL * 24 * 3600 * 1000)
/* Uploads deleted by one sweep job at most. */
#define PZ_UPLOAD_SWEEP_BATCH 256
#define PZ_UPLOAD_TYPE_MAX 31

enum { PZ_UPLOAD_NONE = 0, PZ_UPLOAD_IMAGE = 1, PZ_UPLOAD_FILE = 2 };

typedef struct pz_upload_rec_s {
  int64_t id;
  int64_t user_id;                           /* the uploader */
  char content_type[PZ_UPLOAD_TYPE_MAX + 1]; /* as detected from the bytes */
  int64_t size;
  char name[PZ_UPLOAD_NAME_MAX + 1];
  int width, height;                       /* images, as displayed; 0 for files */
  char thumb_type[PZ_UPLOAD_TYPE_MAX + 1]; /* "" when there is no thumbnail */
  int64_t thumb_size;
  int64_t created_at;
} pz_upload_rec_t;

/* ---- rules: pure functions, any thread ---- */

/* PZ_UPLOAD_IMAGE or PZ_UPLOAD_FILE for an allowed type (a MIME essence,
 * lower case, as libmagic names it), PZ_UPLOAD_NONE otherwise. */
int pz_chat_upload_kind(pz_str_t mime);
/* The allowed type that a declared Content-Type names (parameters and case
 * ignored; the aliases browsers send, such as image/jpg or
 * application/x-zip-compressed, map to their type); NULL when it names
 * none. The result is a static string. */
const char *pz_chat_upload_declared(pz_str_t content_type);
/* The file name extension of an allowed type, without the dot ("png"). */
const char *pz_chat_upload_ext(const char *mime);
/* A file name: 1 to PZ_UPLOAD_NAME_MAX bytes of valid UTF-8, no control
 * characters, no slash or backslash, not "." or "..". 0 or PZ_EINVAL/PZ_EUTF8. */
int pz_chat_upload_name_check(pz_str_t name, pz_err_t *err);
/* A caption: valid UTF-8, 1 to PZ_UPLOAD_CAPTION_MAX_CHARS code points,
 * the same characters as message text. 0 or PZ_EINVAL/PZ_EUTF8. */
int pz_chat_caption_check(pz_str_t caption, pz_err_t *err);

/* ---- media: libmagic and libvips, CPU work for the thread pool ---- */

/* What pz_media_probe found. thumb and stripped are owned: release with pz_media_release. */
typedef struct pz_media_s {
  const char *content_type; /* static: the detected, allowed type */
  int kind;                 /* PZ_UPLOAD_IMAGE / PZ_UPLOAD_FILE */
  int width, height;        /* images */
  void *thumb;              /* images: the thumbnail's bytes */
  size_t thumb_len;
  const char *thumb_type; /* "image/jpeg", or "image/webp" for images with transparency */
  pz_buf_t stripped;      /* images: the bytes to store, without metadata; empty when the original has none */
} pz_media_t;

/* Starts libvips (one thread per operation, no operation cache) once per
 * process; later calls return the first result. Any thread. */
int pz_media_init(pz_err_t *err);
/* Detects the type of data[0..len) from its bytes with libmagic and checks
 * it: PZ_EMEDIA (415) when it is not an allowed type or not the declared
 * one (an allowed type from pz_chat_upload_declared), or for text that is
 * not UTF-8 or an image that does not decode or whose structure
 * pz_media_strip cannot read; PZ_EUNPROCESSABLE (422) for an image over
 * PZ_UPLOAD_MAX_PIXELS. Images get their size, a thumbnail and, when they
 * carry metadata, the bytes to store without it (stripped). Thread-safe;
 * call it off the loop. */
int pz_media_probe(const void *data, size_t len, const char *declared, pz_media_t *out, pz_err_t *err);
void pz_media_release(pz_media_t *m);

/* pz_media_strip adds at most this many bytes: the orientation tag, in
 * its own segment or chunk, and a padding byte. */
#define PZ_MEDIA_STRIP_MAX_GROWTH 38

/* Removes the metadata of an image of type content_type without decoding
 * it, so that a download shows nothing of where or with what a photo was
 * taken: EXIF (GPS position, camera serials), XMP, IPTC, comments, PNG
 * text chunks, and whatever follows the image's end. Pixels, colour
 * profiles and what decoding needs stay byte for byte. orientation is the
 * EXIF orientation that libvips read (vips_image_get_orientation): 2 to 8
 * is written back alone in a minimal EXIF for JPEG, PNG and WebP with
 * VP8X; other values add nothing (GIF has no EXIF: its comment and
 * application blocks go, its loop count and colour profile stay). Types
 * that are not images are left as they are.
 * out must be empty. 0 with out->len == 0: there is nothing to remove,
 * keep the original; 0 with bytes in out: the image to store instead.
 * PZ_EMEDIA with err when the structure cannot be read (a length past the
 * end, a segment where none can be); out is then left empty. Reads
 * nothing outside data[0..len). Pure: any thread. */
int pz_media_strip(const uint8_t *data, size_t len, const char *content_type, int orientation, pz_buf_t *out,
                   pz_err_t *err);

/* ---- the files: DATA_DIR/uploads/xx/yy/<id> and <id>.thumb ---- */

/* Writes the bytes of upload id (thumb: its thumbnail) beside the database
 * at db_path (pz_store_path) so that they survive a crash once it returns
 * 0: a temporary file, fsynced, renamed, its directory fsynced. Blocking:
 * off the loop. PZ_EIO with err on failure, nothing left behind. */
int pz_store_blob_write(const char *db_path, int64_t id, bool thumb, const void *data, size_t len, pz_err_t *err);
/* Reads the whole file of upload id into out (appended); PZ_ENOTFOUND when
 * it is missing, PZ_EIO when it is larger than max. Blocking: off the loop. */
int pz_store_blob_read(const char *db_path, int64_t id, bool thumb, size_t max, pz_buf_t *out, pz_err_t *err);
/* Removes the files of upload id, if any (an upload whose row did not commit). Blocking. */
void pz_store_blob_remove(const char *db_path, int64_t id);
/* Removes the files under DATA_DIR/uploads/XX/ (XX: dir, 0..255, in hex)
 * that no upload row owns: what a crash left between a file's write and
 * its row's commit, or between a row's deletion and its files' removal,
 * and temporary files of interrupted writes. Files of ids at or above
 * below_id are left alone: their upload may be under way (ids grow, so a
 * process passes the first id it made). Names that are not an upload's
 * are left alone too. Adds the count removed to *removed. Runs as a read
 * job (files are removed, rows only read); blocking. */
int pz_store_blob_orphans(pz_db_t *db, const char *db_path, unsigned dir, int64_t below_id, unsigned *removed,
                          pz_err_t *err);

/* ---- rows: inside store jobs, as in store_chat.h ---- */

/* Inserts the upload row. Writer. */
int pz_store_upload_insert(pz_db_t *db, const pz_upload_rec_t *u, pz_err_t *err);
int pz_store_upload_get(pz_db_t *db, int64_t id, pz_upload_rec_t *out, pz_err_t *err);
/* *shared is true when user_id is a member of a conversation that has a
 * message carrying upload id. */
int pz_store_upload_shared(pz_db_t *db, int64_t id, int64_t user_id, bool *shared, pz_err_t *err);
/* Records that message_id of conv_id carries upload_id, which is from then
 * on never swept. Writer. */
int pz_store_upload_link(pz_db_t *db, int64_t upload_id, int64_t conv_id, int64_t message_id, pz_err_t *err);
/* Deletes the rows of at most max uploads created before `before` and
 * never sent in a message, oldest first, and gives their ids in ids[0..*n):
 * their files are the caller's to remove once this commits. Writer. */
int pz_store_upload_sweep(pz_db_t *db, int64_t before, unsigned max, int64_t *ids, unsigned *n, pz_err_t *err);

/* ---- who may read an upload: inside store jobs ---- */

/* Copies upload id to out when user_id may read it: its uploader, or a
 * member of a conversation where it was sent. Otherwise PZ_ENOTFOUND, as
 * for an upload that does not exist, so that ids reveal nothing. */
int pz_chat_upload_access(pz_db_t *db, int64_t user_id, int64_t id, pz_upload_rec_t *out, pz_err_t *err);
/* Makes upload_id readable by the members of conv_id, as carried by
 * message_id (in the message's own job). Writer. */
int pz_chat_upload_link(pz_db_t *db, int64_t upload_id, int64_t conv_id, int64_t message_id, pz_err_t *err);

#endif
