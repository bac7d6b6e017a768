import { loadModel } from '/work/main/src/stylize/style-model.ts';
import { stylizeImage, styleStats } from '/work/main/src/stylize/model.ts';
for (const name of ['cd16x-r41','vgg19-r31']) {
  const m = await loadModel(name, { modelsDir: '/work/shared/models', threads: 2 });
  for (const s of [256, 512]) {
    const img = { width: s, height: s, data: new Float32Array(3*s*s).map(() => Math.random()) };
    const times: number[] = []; const te: number[] = []; const td: number[] = [];
    for (let i = 0; i < 6; i++) {
      let t0 = performance.now();
      const st = await styleStats(m.network, img);
      await stylizeImage(m.network, img, [st]);
      times.push(performance.now() - t0);
      t0 = performance.now(); const f = await m.network.encode(img); te.push(performance.now()-t0);
      t0 = performance.now(); await m.network.decode(f); td.push(performance.now()-t0);
    }
    const med = (a: number[]) => a.sort((x,y)=>x-y)[a.length>>1].toFixed(1);
    console.log(name, s, 'total', med(times), 'enc', med(te), 'dec', med(td));
  }
}
